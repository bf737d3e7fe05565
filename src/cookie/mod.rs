//! Cookies: parsing the `Cookie` header, building `Set-Cookie`, signing ids.
