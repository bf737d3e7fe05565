// sessync.hpp: header-only C++17 wrappers over the C ABI (sessync.h).
//
// Handles are RAII and move-only: sessync::store, sessync::session, sessync::record,
// sessync::options and sessync::buffer free what they own in their destructors, and a
// moved-from handle is empty. Every fallible call passes a sessync_error and throws
// sessync::error (a std::system_error) with the status and the engine's message on
// failure; error::code() is a std::error_code in sessync_category(). Outcomes a caller
// plans for come back as values instead of exceptions where the C manual names them so:
// an absent session or key is std::nullopt.
//
//   sessync::store st = sessync::store::open("mem://?ttl=30m");
//   sessync::session s = st.begin(cookie_header);          // takes the session's lock
//   std::int64_t visits = s.incr("visits");
//   sessync::buffer set_cookie = std::move(s).commit();     // one atomic patch
//   if (!set_cookie.empty()) send_header("Set-Cookie", set_cookie.view());
//
// Link with the library (pkg-config --libs sessync, or the static archive with
// pkg-config --static --libs). Async calls take any callable; it is called once from a
// library thread, must not block for long, and must not throw: the trampoline that calls
// it is noexcept, since an exception must not unwind into the library, so one thrown by
// the callable ends the program (std::terminate). The trampoline's own work does not
// throw: if building the error with the engine's message fails (std::bad_alloc), the
// callable gets an error of the same status with sessync_status_str's message, built
// beforehand. Strings passed as `const char *` (ids, keys, owners, URLs, option names
// and values) must not hold a NUL: one that does throws error(status::invalid_argument)
// rather than be cut short at it.
#ifndef SESSYNC_HPP
#define SESSYNC_HPP

#include <sessync.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace sessync {

/// The C ABI's statuses as a C++ enum (the same numbers).
enum class status : std::uint32_t {
  ok = SESSYNC_STATUS_OK,
  not_found = SESSYNC_STATUS_NOT_FOUND,
  conflict = SESSYNC_STATUS_CONFLICT,
  lock_timeout = SESSYNC_STATUS_LOCK_TIMEOUT,
  stale_token = SESSYNC_STATUS_STALE_TOKEN,
  insufficient_size = SESSYNC_STATUS_INSUFFICIENT_SIZE,
  locked = SESSYNC_STATUS_LOCKED,
  destroyed = SESSYNC_STATUS_DESTROYED,
  rotated = SESSYNC_STATUS_ROTATED,
  full = SESSYNC_STATUS_FULL,
  null_argument = SESSYNC_STATUS_NULL_ARGUMENT,
  invalid_argument = SESSYNC_STATUS_INVALID_ARGUMENT,
  invalid_utf8 = SESSYNC_STATUS_INVALID_UTF8,
  invalid_json = SESSYNC_STATUS_INVALID_JSON,
  too_large = SESSYNC_STATUS_TOO_LARGE,
  not_a_number = SESSYNC_STATUS_NOT_A_NUMBER,
  io = SESSYNC_STATUS_IO,
  backend = SESSYNC_STATUS_BACKEND,
  auth = SESSYNC_STATUS_AUTH,
  protocol = SESSYNC_STATUS_PROTOCOL,
  panic = SESSYNC_STATUS_PANIC,
  cancelled = SESSYNC_STATUS_CANCELLED,
};

namespace detail {
class category_impl final : public std::error_category {
 public:
  const char *name() const noexcept override { return "sessync"; }
  std::string message(int ev) const override {
    return sessync_status_str(static_cast<std::uint32_t>(ev));
  }
};
}  // namespace detail

/// The error category of sessync's statuses: name "sessync", messages from
/// sessync_status_str().
inline const std::error_category &sessync_category() noexcept {
  static const detail::category_impl category;
  return category;
}

inline std::error_code make_error_code(status s) noexcept {
  return {static_cast<int>(s), sessync_category()};
}

/// A failed call: status() is the C status, message() the engine's message (what() adds
/// the status's description), code() a std::error_code in sessync_category().
class error : public std::system_error {
 public:
  error(sessync::status s, std::string message)
      : std::system_error(make_error_code(s), message), status_(s), message_(std::move(message)) {}

  [[nodiscard]] sessync::status status() const noexcept { return status_; }
  [[nodiscard]] const std::string &message() const noexcept { return message_; }

 private:
  sessync::status status_;
  std::string message_;
};

namespace detail {
inline error make_error(sessync_status rc, const sessync_error &e) {
  // The library writes the error on failure; len and message belong together.
  std::size_t len = e.len < sizeof(e.message) ? e.len : sizeof(e.message) - 1;
  return error(static_cast<sessync::status>(rc), std::string(e.message, len));
}

inline void check(sessync_status rc, const sessync_error &e) {
  if (rc != SESSYNC_STATUS_OK) throw make_error(rc, e);
}

inline error make_error(const sessync_error *e, sessync_status rc) {
  if (e == nullptr) return error(static_cast<sessync::status>(rc), sessync_status_str(rc));
  return make_error(rc, *e);
}

/// A string argument for a `const char *` parameter. The C ABI reads up to the first NUL,
/// so a string holding one would silently name something else ("a\0b" the key "a"): such a
/// string is refused with status::invalid_argument, as the other bindings do.
inline const char *c_str(const std::string &s, const char *what) {
  if (s.find('\0') != std::string::npos) {
    throw error(status::invalid_argument, std::string(what) + " contains a NUL character");
  }
  return s.c_str();
}

/// One error per status, built once, with sessync_status_str's message: what a callback
/// receives when building the error with the engine's message fails (std::bad_alloc).
/// Every async call builds the table before handing its callback to the library, so a
/// trampoline only reads it and never allocates to report a failure.
inline const error &prebuilt_error(sessync_status rc) noexcept {
  static const std::vector<error> table = [] {
    std::vector<error> v;
    for (std::uint32_t s = 0; s <= SESSYNC_STATUS_CANCELLED; s++) {
      v.emplace_back(static_cast<sessync::status>(s), sessync_status_str(s));
    }
    return v;
  }();
  std::size_t i = static_cast<std::size_t>(rc);
  return table[i < table.size() ? i : static_cast<std::size_t>(SESSYNC_STATUS_PANIC)];
}

/// Makes sure prebuilt_error's table exists (may throw std::bad_alloc, at the call site).
inline void prepare_callback_errors() { (void)prebuilt_error(SESSYNC_STATUS_OK); }

/// Calls `deliver(const error &)` with the failure's error, or with the prebuilt one of its
/// status when building it throws. For trampolines, which must not throw into the library.
template <class Deliver>
inline void deliver_error(const sessync_error *err, sessync_status rc, Deliver &&deliver) noexcept {
  std::optional<error> x;
  try {
    x.emplace(make_error(err, rc));
  } catch (...) {
    deliver(prebuilt_error(rc));
    return;
  }
  deliver(*x);
}

/// A duration as the C ABI's unsigned milliseconds. A negative one becomes 0, which
/// every TTL argument refuses (1 ms at least): the engine's invalid_argument and message,
/// rather than a huge unsigned number.
inline std::uint64_t to_ms(std::chrono::milliseconds d) noexcept {
  return d.count() < 0 ? 0 : static_cast<std::uint64_t>(d.count());
}

/// The ids of a JSON array of session ids (sessync_store_list's page). Ids are
/// `A-Z a-z 0-9 - _`, so a string holds no escapes.
inline std::vector<std::string> parse_ids(std::string_view json) {
  std::vector<std::string> ids;
  std::size_t i = 0;
  while (true) {
    std::size_t open = json.find('"', i);
    if (open == std::string_view::npos) break;
    std::size_t close = json.find('"', open + 1);
    if (close == std::string_view::npos) {
      throw error(status::invalid_json, "sessync_store_list returned an unterminated id");
    }
    ids.emplace_back(json.substr(open + 1, close - open - 1));
    i = close + 1;
  }
  return ids;
}
}  // namespace detail

/// Bytes the library allocated (session JSON, a Set-Cookie value), freed on destruction.
class buffer {
 public:
  buffer() noexcept = default;
  explicit buffer(sessync_buf raw) noexcept : buf_(raw) {}
  buffer(const buffer &) = delete;
  buffer &operator=(const buffer &) = delete;
  buffer(buffer &&o) noexcept : buf_(std::exchange(o.buf_, sessync_buf{nullptr, 0})) {}
  buffer &operator=(buffer &&o) noexcept {
    if (this != &o) {
      sessync_buf_free(&buf_);
      buf_ = std::exchange(o.buf_, sessync_buf{nullptr, 0});
    }
    return *this;
  }
  ~buffer() { sessync_buf_free(&buf_); }

  [[nodiscard]] const std::uint8_t *data() const noexcept { return buf_.data; }
  [[nodiscard]] std::size_t size() const noexcept { return buf_.len; }
  [[nodiscard]] bool empty() const noexcept { return buf_.len == 0; }
  /// The bytes as text (NUL-terminated by the library; the view excludes the NUL).
  [[nodiscard]] std::string_view view() const noexcept {
    return buf_.data ? std::string_view(reinterpret_cast<const char *>(buf_.data), buf_.len)
                     : std::string_view();
  }
  [[nodiscard]] std::string str() const { return std::string(view()); }
  /// Where a C call writes the buffer (frees what was held first).
  [[nodiscard]] sessync_buf *out() noexcept {
    sessync_buf_free(&buf_);
    return &buf_;
  }

 private:
  sessync_buf buf_{nullptr, 0};
};

/// Settings for store::open (sessync_options).
class options {
 public:
  options() {
    sessync_error e{};
    detail::check(sessync_options_new(&ptr_, &e), e);
  }
  options(const options &) = delete;
  options &operator=(const options &) = delete;
  options(options &&o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  options &operator=(options &&o) noexcept {
    if (this != &o) {
      sessync_options_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~options() { sessync_options_free(ptr_); }

  /// One option from text (cookie_name, lock_wait, ttl, …; see sessync_options_set).
  options &set(const std::string &key, const std::string &value) {
    sessync_error e{};
    detail::check(sessync_options_set(ptr_, detail::c_str(key, "option name"), detail::c_str(value, "option value"), &e), e);
    return *this;
  }
  options &add_signing_key(std::string_view key) {
    sessync_error e{};
    detail::check(sessync_options_add_signing_key(ptr_, reinterpret_cast<const std::uint8_t *>(key.data()),
                                                  key.size(), &e),
                  e);
    return *this;
  }
  options &set_cookie_format(sessync_cookie_format format) {
    sessync_error e{};
    detail::check(sessync_options_set_cookie_format(ptr_, static_cast<std::uint32_t>(format), &e), e);
    return *this;
  }
  [[nodiscard]] const sessync_options *get() const noexcept { return ptr_; }

 private:
  sessync_options *ptr_ = nullptr;
};

/// A snapshot of one session (sessync_record): zero-copy, immutable.
class record {
 public:
  record() noexcept = default;
  explicit record(sessync_record *raw) noexcept : ptr_(raw) {}
  record(const record &) = delete;
  record &operator=(const record &) = delete;
  record(record &&o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  record &operator=(record &&o) noexcept {
    if (this != &o) {
      sessync_record_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~record() { sessync_record_free(ptr_); }

  explicit operator bool() const noexcept { return ptr_ != nullptr; }
  [[nodiscard]] std::string_view json() const noexcept {
    std::size_t len = 0;
    const char *p = sessync_record_json(ptr_, &len);
    return p ? std::string_view(p, len) : std::string_view();
  }
  [[nodiscard]] std::string_view id() const noexcept {
    const char *p = sessync_record_id(ptr_);
    return p ? std::string_view(p) : std::string_view();
  }
  [[nodiscard]] std::uint64_t version() const noexcept { return sessync_record_version(ptr_); }
  [[nodiscard]] std::uint64_t expires_at() const noexcept { return sessync_record_expires_at(ptr_); }
  [[nodiscard]] std::uint64_t created() const noexcept { return sessync_record_created(ptr_); }
  /// The session's own idle TTL (session::set_ttl, store::touch_ttl), or nullopt when it
  /// follows the store's `ttl` (sessync_record_ttl's 0).
  [[nodiscard]] std::optional<std::chrono::milliseconds> ttl() const noexcept {
    std::uint64_t ms = sessync_record_ttl(ptr_);
    if (ms == 0) return std::nullopt;
    return std::chrono::milliseconds(static_cast<std::chrono::milliseconds::rep>(ms));
  }
  [[nodiscard]] const sessync_record *get() const noexcept { return ptr_; }

 private:
  sessync_record *ptr_ = nullptr;
};

/// One request's view of a visitor's session (sessync_session). End it with commit() or
/// abort(); destroying an unended session aborts it (the lock is released).
class session {
 public:
  session() noexcept = default;
  explicit session(sessync_session *raw) noexcept : ptr_(raw) {}
  session(const session &) = delete;
  session &operator=(const session &) = delete;
  session(session &&o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  session &operator=(session &&o) noexcept {
    if (this != &o) {
      sessync_session_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~session() { sessync_session_free(ptr_); }

  explicit operator bool() const noexcept { return ptr_ != nullptr; }

  /// The id (copied: the library's string changes with rotate()).
  [[nodiscard]] std::string id() const {
    const char *p = sessync_session_id(ptr_);
    return p ? std::string(p) : std::string();
  }
  [[nodiscard]] bool is_new() const noexcept { return sessync_session_is_new(ptr_); }
  [[nodiscard]] std::uint64_t version() const noexcept { return sessync_session_version(ptr_); }
  [[nodiscard]] std::uint64_t expires_at() const noexcept { return sessync_session_expires_at(ptr_); }
  [[nodiscard]] std::uint64_t token() const noexcept { return sessync_session_token(ptr_); }
  [[nodiscard]] bool changed() const noexcept { return sessync_session_changed(ptr_); }

  /// The value at `key` as JSON, or nullopt when absent.
  [[nodiscard]] std::optional<buffer> get(const std::string &key) {
    sessync_error e{};
    buffer out;
    sessync_status rc = sessync_session_get(ptr_, detail::c_str(key, "session key"), out.out(), &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return out;
  }
  /// The integer at `key`, or nullopt when absent (a non-integer throws not_a_number).
  [[nodiscard]] std::optional<std::int64_t> get_i64(const std::string &key) {
    sessync_error e{};
    std::int64_t v = 0;
    sessync_status rc = sessync_session_get_i64(ptr_, detail::c_str(key, "session key"), &v, &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return v;
  }
  /// The bytes at `key` (set_bytes), or nullopt when absent.
  [[nodiscard]] std::optional<buffer> get_bytes(const std::string &key) {
    sessync_error e{};
    buffer out;
    sessync_status rc = sessync_session_get_bytes(ptr_, detail::c_str(key, "session key"), out.out(), &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return out;
  }
  /// All of the data as a JSON object.
  [[nodiscard]] buffer data() {
    sessync_error e{};
    buffer out;
    detail::check(sessync_session_data(ptr_, out.out(), &e), e);
    return out;
  }
  /// Sets `key` to a JSON value (text).
  void set(const std::string &key, std::string_view json) {
    sessync_error e{};
    detail::check(sessync_session_set(ptr_, detail::c_str(key, "session key"), reinterpret_cast<const std::uint8_t *>(json.data()),
                                      json.size(), &e),
                  e);
  }
  void set_bytes(const std::string &key, std::string_view bytes) {
    sessync_error e{};
    detail::check(sessync_session_set_bytes(ptr_, detail::c_str(key, "session key"), reinterpret_cast<const std::uint8_t *>(bytes.data()),
                                            bytes.size(), &e),
                  e);
  }
  void remove(const std::string &key) {
    sessync_error e{};
    detail::check(sessync_session_remove(ptr_, detail::c_str(key, "session key"), &e), e);
  }
  /// Adds `by` (an atomic increment at commit); returns the value as this request sees it.
  std::int64_t incr(const std::string &key, std::int64_t by = 1) {
    sessync_error e{};
    std::int64_t v = 0;
    detail::check(sessync_session_incr(ptr_, detail::c_str(key, "session key"), by, &v, &e), e);
    return v;
  }
  /// Sets the owner, or clears it with nullopt.
  void set_owner(const std::optional<std::string> &owner) {
    sessync_error e{};
    detail::check(sessync_session_set_owner(ptr_, owner ? detail::c_str(*owner, "owner") : nullptr, &e), e);
  }
  void rotate() {
    sessync_error e{};
    detail::check(sessync_session_rotate(ptr_, &e), e);
  }
  /// Gives the session its own idle TTL (1 ms to one year) from commit on, applied in
  /// the commit's atomic step (or as a touch when nothing else changed): a cookie's
  /// Max-Age. Out of range (zero, negative, over a year) throws invalid_argument.
  void set_ttl(std::chrono::milliseconds ttl) {
    sessync_error e{};
    detail::check(sessync_session_set_ttl(ptr_, detail::to_ms(ttl), &e), e);
  }
  void destroy() {
    sessync_error e{};
    detail::check(sessync_session_destroy(ptr_, &e), e);
  }

  /// Writes the changes as one atomic patch and releases the lock; returns the Set-Cookie
  /// value (empty when none). Ends the session even when it throws.
  [[nodiscard]] buffer commit() {
    sessync_error e{};
    buffer out;
    sessync_status rc = sessync_session_commit(release(), out.out(), &e);
    detail::check(rc, e);
    return out;
  }

  /// commit() on the library's pool: `f(std::string_view set_cookie, const sessync::error *err)`
  /// is called once from a library thread (err null on success). Ends the session now.
  template <class F>
  void commit_async(F &&f) {
    end_async(sessync_session_commit_async, std::forward<F>(f));
  }

  /// Ends the request without writing; releases the lock.
  void abort() {
    sessync_error e{};
    detail::check(sessync_session_abort(release(), &e), e);
  }

  /// abort() without blocking (with a daemon or Redis, releasing the lock is a round
  /// trip): `f(std::string_view set_cookie, const sessync::error *err)` is called once from
  /// a library thread, with an empty set_cookie and err null on success. Ends the session
  /// now; if this throws, the session was aborted at once and `f` is never called.
  template <class F>
  void abort_async(F &&f) {
    end_async(sessync_session_abort_async, std::forward<F>(f));
  }

  /// Gives up ownership of the C handle.
  [[nodiscard]] sessync_session *release() noexcept { return std::exchange(ptr_, nullptr); }
  [[nodiscard]] sessync_session *get() const noexcept { return ptr_; }

 private:
  /// commit_async and abort_async: the session is consumed whatever happens (if making
  /// the holder throws, it is aborted here, as the C call would have).
  template <class F>
  void end_async(sessync_status (*call)(sessync_session *, sessync_commit_callback, void *, sessync_error *),
                 F &&f) {
    using Fn = std::decay_t<F>;
    sessync_session *raw = release();
    std::unique_ptr<Fn> holder;
    try {
      detail::prepare_callback_errors();
      holder = std::make_unique<Fn>(std::forward<F>(f));
    } catch (...) {
      sessync_session_free(raw);
      throw;
    }
    sessync_error e{};
    sessync_status rc = call(raw, &commit_trampoline<Fn>, holder.get(), &e);
    detail::check(rc, e);
    holder.release();  // the callback owns it now
  }

  template <class Fn>
  static void commit_trampoline(void *userdata, sessync_status rc, const sessync_buf *set_cookie,
                                const sessync_error *err) noexcept {
    std::unique_ptr<Fn> fn(static_cast<Fn *>(userdata));
    if (rc == SESSYNC_STATUS_OK) {
      std::string_view v;
      if (set_cookie && set_cookie->data) v = std::string_view(reinterpret_cast<const char *>(set_cookie->data), set_cookie->len);
      (*fn)(v, static_cast<const error *>(nullptr));
    } else {
      detail::deliver_error(err, rc, [&](const error &x) { (*fn)(std::string_view(), &x); });
    }
  }

  sessync_session *ptr_ = nullptr;
};

/// Fetched data and its version (store::fetch).
struct fetched {
  buffer json;
  std::uint64_t version = 0;
};

/// One page of store::list: the ids and the cursor of the next page (0: the scan is done).
struct list_page {
  std::vector<std::string> ids;
  std::uint64_t next_cursor = 0;
};

/// A session store (sessync_store): thread-safe; share one per process.
class store {
 public:
  store() noexcept = default;
  explicit store(sessync_store *raw) noexcept : ptr_(raw) {}
  store(const store &) = delete;
  store &operator=(const store &) = delete;
  store(store &&o) noexcept : ptr_(std::exchange(o.ptr_, nullptr)) {}
  store &operator=(store &&o) noexcept {
    if (this != &o) {
      sessync_store_free(ptr_);
      ptr_ = std::exchange(o.ptr_, nullptr);
    }
    return *this;
  }
  ~store() { sessync_store_free(ptr_); }

  /// Opens a store from a URL (mem://, unix://, tcp://, tls://, redis://, …).
  [[nodiscard]] static store open(const std::string &url, const options *opts = nullptr) {
    sessync_error e{};
    sessync_store *raw = nullptr;
    detail::check(sessync_store_open(detail::c_str(url, "store URL"), opts ? opts->get() : nullptr, &raw, &e), e);
    return store(raw);
  }

  explicit operator bool() const noexcept { return ptr_ != nullptr; }
  [[nodiscard]] const sessync_store *get() const noexcept { return ptr_; }

  /// The session's record, or nullopt when absent or expired.
  [[nodiscard]] std::optional<record> get(const std::string &id) const {
    sessync_error e{};
    sessync_record *raw = nullptr;
    sessync_status rc = sessync_store_get(ptr_, detail::c_str(id, "session id"), &raw, &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return record(raw);
  }
  [[nodiscard]] std::optional<fetched> fetch(const std::string &id) const {
    sessync_error e{};
    fetched f;
    sessync_status rc = sessync_store_fetch(ptr_, detail::c_str(id, "session id"), f.json.out(), &f.version, &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return f;
  }
  [[nodiscard]] std::optional<buffer> fetch_record(const std::string &id) const {
    sessync_error e{};
    buffer out;
    sessync_status rc = sessync_store_fetch_record(ptr_, detail::c_str(id, "session id"), out.out(), &e);
    if (rc == SESSYNC_STATUS_NOT_FOUND) return std::nullopt;
    detail::check(rc, e);
    return out;
  }
  /// Replaces the data; a compare-and-swap with `expected_version`. Returns the version.
  std::uint64_t write(const std::string &id, std::string_view json,
                      std::optional<std::uint64_t> expected_version = std::nullopt, std::uint64_t token = 0,
                      std::uint32_t flags = 0) const {
    sessync_error e{};
    std::uint64_t version = 0;
    std::uint64_t expected = expected_version.value_or(0);
    detail::check(sessync_store_write(ptr_, detail::c_str(id, "session id"), reinterpret_cast<const std::uint8_t *>(json.data()),
                                      json.size(), expected_version ? &expected : nullptr, token, flags,
                                      &version, &e),
                  e);
    return version;
  }
  /// Applies a JSON Merge Patch atomically. Returns the version.
  std::uint64_t patch(const std::string &id, std::string_view json, std::uint64_t token = 0,
                      std::uint32_t flags = 0) const {
    sessync_error e{};
    std::uint64_t version = 0;
    detail::check(sessync_store_patch(ptr_, detail::c_str(id, "session id"), reinterpret_cast<const std::uint8_t *>(json.data()),
                                      json.size(), token, flags, &version, &e),
                  e);
    return version;
  }
  std::int64_t incr(const std::string &id, const std::string &key, std::int64_t by = 1, std::uint64_t token = 0,
                    std::uint32_t flags = 0) const {
    sessync_error e{};
    std::int64_t v = 0;
    detail::check(sessync_store_incr(ptr_, detail::c_str(id, "session id"), detail::c_str(key, "session key"), by, token, flags, &v, &e), e);
    return v;
  }
  /// Takes the session's lock (blocks up to wait_ms); returns the fencing token.
  [[nodiscard]] std::uint64_t lock(const std::string &id, std::uint64_t lease_ms, std::uint64_t wait_ms) const {
    sessync_error e{};
    std::uint64_t token = 0;
    detail::check(sessync_store_lock(ptr_, detail::c_str(id, "session id"), lease_ms, wait_ms, &token, &e), e);
    return token;
  }
  void unlock(const std::string &id, std::uint64_t token) const {
    sessync_error e{};
    detail::check(sessync_store_unlock(ptr_, detail::c_str(id, "session id"), token, &e), e);
  }
  /// Records an access; true when it wrote.
  bool touch(const std::string &id) const {
    sessync_error e{};
    bool written = false;
    detail::check(sessync_store_touch(ptr_, detail::c_str(id, "session id"), &written, &e), e);
    return written;
  }
  /// Touches a session and gives it its own idle TTL (1 ms to one year) in one step;
  /// always writes (returns true). Absent: not_found; out of range: invalid_argument.
  bool touch_ttl(const std::string &id, std::chrono::milliseconds ttl) const {
    sessync_error e{};
    bool written = false;
    detail::check(sessync_store_touch_ttl(ptr_, detail::c_str(id, "session id"), detail::to_ms(ttl), &written, &e), e);
    return written;
  }
  /// One page of the live sessions' ids, like Redis's SCAN: start with cursor 0 and pass
  /// back next_cursor until it is 0. `count` (at least 1) is a hint of the page size.
  /// Every session alive for the whole scan is listed at least once (Redis may repeat one).
  [[nodiscard]] list_page list(std::uint64_t cursor = 0, std::size_t count = 100) const {
    sessync_error e{};
    buffer out;
    list_page page;
    detail::check(sessync_store_list(ptr_, cursor, count, out.out(), &page.next_cursor, &e), e);
    page.ids = detail::parse_ids(out.view());
    return page;
  }
  /// Every live session's id: list() page after page, each id once.
  [[nodiscard]] std::vector<std::string> list_all(std::size_t count = 1000) const {
    std::vector<std::string> all;
    std::unordered_set<std::string> seen;
    std::uint64_t cursor = 0;
    do {
      list_page page = list(cursor, count);
      for (std::string &id : page.ids) {
        if (seen.insert(id).second) all.push_back(std::move(id));
      }
      cursor = page.next_cursor;
    } while (cursor != 0);
    return all;
  }
  /// Destroys every session (tombstoned, as destroy()); returns how many were live.
  std::size_t clear() const {
    sessync_error e{};
    std::size_t count = 0;
    detail::check(sessync_store_clear(ptr_, &count, &e), e);
    return count;
  }
  /// Destroys a session (tombstoned); true when a live one was there.
  bool destroy(const std::string &id) const {
    sessync_error e{};
    bool existed = false;
    detail::check(sessync_store_destroy(ptr_, detail::c_str(id, "session id"), &existed, &e), e);
    return existed;
  }
  /// Moves a session to a fresh id; returns it.
  [[nodiscard]] std::string rotate(const std::string &id, std::uint64_t token = 0) const {
    sessync_error e{};
    char out[SESSYNC_ID_MAX_LEN + 1] = {};
    std::size_t len = 0;
    detail::check(sessync_store_rotate(ptr_, detail::c_str(id, "session id"), token, out, sizeof out, &len, &e), e);
    return std::string(out, len);
  }
  std::uint64_t set_owner(const std::string &id, const std::optional<std::string> &owner,
                          std::uint64_t token = 0) const {
    sessync_error e{};
    std::uint64_t version = 0;
    detail::check(sessync_store_set_owner(ptr_, detail::c_str(id, "session id"), owner ? detail::c_str(*owner, "owner") : nullptr, token, &version, &e),
                  e);
    return version;
  }
  /// The owner's live sessions, as a JSON array of ids.
  [[nodiscard]] buffer sessions_of(const std::string &owner) const {
    sessync_error e{};
    buffer out;
    detail::check(sessync_store_sessions_of(ptr_, detail::c_str(owner, "owner"), out.out(), &e), e);
    return out;
  }
  std::size_t destroy_all(const std::string &owner) const {
    sessync_error e{};
    std::size_t count = 0;
    detail::check(sessync_store_destroy_all(ptr_, detail::c_str(owner, "owner"), &count, &e), e);
    return count;
  }
  [[nodiscard]] sessync_stats stats() const {
    sessync_error e{};
    sessync_stats s{};
    detail::check(sessync_store_stats(ptr_, &s, sizeof s, &e), e);
    return s;
  }

  /// Starts a request from the raw Cookie header (blocks for the lock wait; wait_ms < 0:
  /// the store's lock_wait).
  [[nodiscard]] session begin(std::string_view cookie, std::uint32_t flags = SESSYNC_BEGIN_LOCK,
                              std::int64_t wait_ms = -1) const {
    sessync_error e{};
    sessync_session *raw = nullptr;
    detail::check(sessync_session_begin(ptr_, reinterpret_cast<const std::uint8_t *>(cookie.data()), cookie.size(),
                                        flags, wait_ms, &raw, &e),
                  e);
    return session(raw);
  }
  [[nodiscard]] session begin_id(const std::string &id, std::uint32_t flags = SESSYNC_BEGIN_LOCK,
                                 std::int64_t wait_ms = -1) const {
    sessync_error e{};
    sessync_session *raw = nullptr;
    detail::check(sessync_session_begin_id(ptr_, detail::c_str(id, "session id"), flags, wait_ms, &raw, &e), e);
    return session(raw);
  }

  /// lock() without blocking: `f(std::uint64_t token, const sessync::error *err)` once,
  /// from a library thread. Returns the ticket for ticket_cancel().
  template <class F>
  [[nodiscard]] std::uint64_t lock_async(const std::string &id, std::uint64_t lease_ms, std::uint64_t wait_ms,
                                         F &&f) const {
    using Fn = std::decay_t<F>;
    detail::prepare_callback_errors();
    auto holder = std::make_unique<Fn>(std::forward<F>(f));
    sessync_error e{};
    std::uint64_t ticket = 0;
    detail::check(sessync_store_lock_async(ptr_, detail::c_str(id, "session id"), lease_ms, wait_ms, &lock_trampoline<Fn>, holder.get(),
                                           &ticket, &e),
                  e);
    holder.release();
    return ticket;
  }
  /// begin() without blocking: `f(sessync::session s, const sessync::error *err)` once, from
  /// a library thread (s empty on failure). Returns the ticket.
  template <class F>
  [[nodiscard]] std::uint64_t begin_async(std::string_view cookie, F &&f, std::uint32_t flags = SESSYNC_BEGIN_LOCK,
                                          std::int64_t wait_ms = -1) const {
    using Fn = std::decay_t<F>;
    detail::prepare_callback_errors();
    auto holder = std::make_unique<Fn>(std::forward<F>(f));
    sessync_error e{};
    std::uint64_t ticket = 0;
    detail::check(sessync_session_begin_async(ptr_, reinterpret_cast<const std::uint8_t *>(cookie.data()),
                                              cookie.size(), flags, wait_ms, &session_trampoline<Fn>,
                                              holder.get(), &ticket, &e),
                  e);
    holder.release();
    return ticket;
  }
  template <class F>
  [[nodiscard]] std::uint64_t begin_id_async(const std::string &id, F &&f, std::uint32_t flags = SESSYNC_BEGIN_LOCK,
                                             std::int64_t wait_ms = -1) const {
    using Fn = std::decay_t<F>;
    detail::prepare_callback_errors();
    auto holder = std::make_unique<Fn>(std::forward<F>(f));
    sessync_error e{};
    std::uint64_t ticket = 0;
    detail::check(sessync_session_begin_id_async(ptr_, detail::c_str(id, "session id"), flags, wait_ms, &session_trampoline<Fn>,
                                                 holder.get(), &ticket, &e),
                  e);
    holder.release();
    return ticket;
  }

 private:
  template <class Fn>
  static void lock_trampoline(void *userdata, sessync_status rc, std::uint64_t token,
                              const sessync_error *err) noexcept {
    std::unique_ptr<Fn> fn(static_cast<Fn *>(userdata));
    if (rc == SESSYNC_STATUS_OK) {
      (*fn)(token, static_cast<const error *>(nullptr));
    } else {
      detail::deliver_error(err, rc, [&](const error &x) { (*fn)(std::uint64_t{0}, &x); });
    }
  }
  template <class Fn>
  static void session_trampoline(void *userdata, sessync_status rc, sessync_session *raw,
                                 const sessync_error *err) noexcept {
    std::unique_ptr<Fn> fn(static_cast<Fn *>(userdata));
    if (rc == SESSYNC_STATUS_OK) {
      (*fn)(session(raw), static_cast<const error *>(nullptr));
    } else {
      detail::deliver_error(err, rc, [&](const error &x) { (*fn)(session(), &x); });
    }
  }

  sessync_store *ptr_ = nullptr;
};

/// Cancels a pending async call; true when it was still pending (its callback then comes
/// with status::cancelled).
inline bool ticket_cancel(std::uint64_t ticket) {
  sessync_error e{};
  bool cancelled = false;
  detail::check(sessync_ticket_cancel(ticket, &cancelled, &e), e);
  return cancelled;
}

/// For a program about to exit: with `cancel`, cancels every pending async call (their
/// callbacks come with status::cancelled; commits in progress are not cancelled), then
/// waits up to `wait` for the callbacks of every call made so far to return. Returns how
/// many are still pending or running (0: none runs, none will come). Never call it from a
/// callback: it would wait for itself until `wait` runs out.
inline std::size_t async_drain(bool cancel, std::chrono::milliseconds wait) {
  sessync_error e{};
  std::size_t pending = 0;
  detail::check(sessync_async_drain(cancel, detail::to_ms(wait), &pending, &e), e);
  return pending;
}

/// A fresh session id (192 random bits, 32 base64url characters).
[[nodiscard]] inline std::string id_generate() {
  sessync_error e{};
  char out[SESSYNC_ID_MAX_LEN + 1] = {};
  std::size_t len = 0;
  detail::check(sessync_id_generate(out, sizeof out, &len, &e), e);
  return std::string(out, len);
}

/// Throws error(status::invalid_argument) unless `id` is a well-formed session id.
inline void id_check(const std::string &id) {
  sessync_error e{};
  detail::check(sessync_id_check(detail::c_str(id, "session id"), &e), e);
}

/// The library's version ("0.1.0") and its number (MAJOR * 1000000 + MINOR * 1000 + PATCH).
[[nodiscard]] inline std::string_view version() noexcept { return sessync_version(); }
[[nodiscard]] inline std::uint32_t version_number() noexcept { return sessync_version_number(); }
/// Whether the library linked is the one this header describes.
[[nodiscard]] inline bool version_matches() noexcept { return sessync_version_number() == SESSYNC_VERSION_NUMBER; }
[[nodiscard]] inline std::string_view status_str(status s) noexcept {
  return sessync_status_str(static_cast<std::uint32_t>(s));
}
/// The per-thread message of the last failed call (the exceptions carry their own).
[[nodiscard]] inline std::string_view last_error_message() noexcept { return sessync_last_error_message(); }

}  // namespace sessync

namespace std {
template <>
struct is_error_code_enum<sessync::status> : true_type {};
}  // namespace std

#endif  // SESSYNC_HPP
