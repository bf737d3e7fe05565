// Checks sessync's express-format cookies with the npm packages express-session uses
// (its own copies of `cookie` and `cookie-signature`, and `uid-safe` for its ids), for
// tests/express_cookie.rs. Reads one JSON request on stdin, writes one JSON answer:
//
//   request: { "unsign": [{ "header": "a=1; connect.sid=...", "secrets": ["s1", ...] }],
//              "sign":   [{ "id": "...", "secret": "s1" }],
//              "ids":    n }
//   answer:  { "unsign": [the id, or false],    (express-session's getcookie)
//              "sign":   ["connect.sid=s%3A..."], (express-session's setcookie, no options)
//              "ids":    [n fresh ids] }          (express-session's default genid)
'use strict';

const path = require('path');

const base = path.dirname(require.resolve('express-session/package.json'));
const own = (name) => require(require.resolve(name, { paths: [base] }));
const cookie = own('cookie');
const signature = own('cookie-signature');
const uid = own('uid-safe');

const NAME = 'connect.sid';

// express-session's getcookie, for a Cookie header: the first cookie of the name, which
// must start with `s:` and verify under one of the secrets.
function unsign(header, secrets) {
  const raw = cookie.parse(header)[NAME];
  if (typeof raw !== 'string' || raw.substr(0, 2) !== 's:') return false;
  for (const secret of secrets) {
    const val = signature.unsign(raw.slice(2), secret);
    if (val !== false) return val;
  }
  return false;
}

let input = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { input += chunk; });
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const answer = {
    unsign: (req.unsign || []).map((u) => unsign(u.header, u.secrets)),
    sign: (req.sign || []).map((s) => cookie.serialize(NAME, 's:' + signature.sign(s.id, s.secret))),
    ids: Array.from({ length: req.ids || 0 }, () => uid.sync(24)),
  };
  process.stdout.write(JSON.stringify(answer) + '\n');
});
