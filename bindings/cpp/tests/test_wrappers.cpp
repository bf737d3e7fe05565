// Tests of sessync.hpp: RAII and move-only handles, the request flow, errors as
// exceptions (status, engine message, std::error_code), async calls with callables,
// per-session TTLs, listing and clearing, and async_drain.
// Built with -Wall -Wextra -Werror and run under valgrind by bindings/cpp/run-tests.sh.
#include <sessync.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <thread>
#include <type_traits>
#include <unordered_set>
#include <vector>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::exit(1);                                                              \
    }                                                                            \
  } while (0)

template <class F>
sessync::error expect_error(F &&f, sessync::status want) {
  try {
    f();
  } catch (const sessync::error &e) {
    if (e.status() != want) {
      std::fprintf(stderr, "expected status %u, got %u: %s\n", static_cast<unsigned>(want),
                   static_cast<unsigned>(e.status()), e.what());
      std::exit(1);
    }
    return e;
  }
  std::fprintf(stderr, "expected an exception of status %u\n", static_cast<unsigned>(want));
  std::exit(1);
}

// A one-shot latch for callbacks from library threads.
template <class T>
struct slot {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  T value{};
  void put(T v) {
    std::lock_guard<std::mutex> g(m);
    value = std::move(v);
    done = true;
    cv.notify_all();
  }
  T take() {
    std::unique_lock<std::mutex> g(m);
    cv.wait(g, [&] { return done; });
    return std::move(value);
  }
};

// Allocation failure on demand, for the callbacks' fallback error: while g_fail_alloc is
// set, operator new throws std::bad_alloc on every thread but the main one (the library's
// callback threads; the library itself allocates with malloc, not operator new).
static std::atomic<bool> g_fail_alloc{false};
static std::thread::id g_main_thread;

// GCC sees these replacements' malloc and free inlined against each other and warns of
// a mismatch; they are the program's operator new and delete, a matched pair.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void *operator new(std::size_t n) {
  if (g_fail_alloc.load() && std::this_thread::get_id() != g_main_thread) throw std::bad_alloc();
  if (void *p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void *p) noexcept { std::free(p); }
void operator delete(void *p, std::size_t) noexcept { std::free(p); }
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static_assert(!std::is_copy_constructible_v<sessync::store>);
static_assert(!std::is_copy_assignable_v<sessync::session>);
static_assert(!std::is_copy_constructible_v<sessync::record>);
static_assert(!std::is_copy_constructible_v<sessync::buffer>);
static_assert(!std::is_copy_constructible_v<sessync::options>);
static_assert(std::is_nothrow_move_constructible_v<sessync::store>);
static_assert(std::is_nothrow_move_assignable_v<sessync::session>);
static_assert(std::is_nothrow_move_constructible_v<sessync::buffer>);
static_assert(std::is_base_of_v<std::system_error, sessync::error>);

static void test_version() {
  CHECK(sessync::version_matches());
  CHECK(sessync::version_number() == SESSYNC_VERSION_NUMBER);
  CHECK(!sessync::version().empty());
  CHECK(sessync::status_str(sessync::status::not_found) == std::string_view(sessync_status_str(1)));
}

static void test_flow() {
  sessync::options opts;
  opts.set("cookie_name", "sid").set("lock_wait", "2s").add_signing_key("a signing key of 16+ bytes");
  sessync::store st = sessync::store::open("mem://?ttl=30m", &opts);
  CHECK(st);

  sessync::session s = st.begin("");
  CHECK(s.is_new());
  CHECK(s.token() == 0);  // a new session has no lock to take
  s.set("user", R"({"name":"ada"})");
  CHECK(s.incr("visits") == 1);
  CHECK(s.incr("visits", 2) == 3);
  CHECK(s.get_i64("visits").value() == 3);
  CHECK(!s.get("absent").has_value());
  s.set_bytes("blob", std::string_view("\x01\x02\x03", 3));
  CHECK(s.get_bytes("blob")->size() == 3);
  s.set_owner(std::string("user-1"));
  CHECK(s.changed());
  std::string id = s.id();
  sessync::buffer cookie = s.commit();
  CHECK(!s);  // consumed
  CHECK(cookie.view().rfind("sid=", 0) == 0);

  std::optional<sessync::fetched> f = st.fetch(id);
  CHECK(f && f->version == 1);
  CHECK(f->json.view().find("\"visits\":3") != std::string_view::npos);
  std::optional<sessync::record> r = st.get(id);
  CHECK(r && r->id() == id && r->version() == 1 && r->created() > 0 && r->expires_at() > r->created());
  CHECK(st.fetch_record(id)->view().find("\"owner\":\"user-1\"") != std::string_view::npos);
  CHECK(st.sessions_of("user-1").view() == "[\"" + id + "\"]");

  // Move semantics: the moved-from handles are empty and destroy nothing.
  sessync::store st2 = std::move(st);
  CHECK(!st && st2);
  st = std::move(st2);

  // The cookie brings the visitor back to the same session.
  std::string pair = cookie.str().substr(0, cookie.str().find(';'));
  sessync::session s2 = st.begin(pair);
  CHECK(!s2.is_new() && s2.id() == id);
  CHECK(s2.data().view().find("\"user\"") != std::string_view::npos);
  s2.remove("blob");
  s2.rotate();
  CHECK(s2.id() != id);
  sessync::buffer c2 = s2.commit();
  CHECK(!c2.empty());

  CHECK(st.write(id + "x", R"({"a":1})") == 1);  // a new id of 33 characters
  CHECK(st.patch(id + "x", R"({"b":2})") == 2);
  CHECK(st.incr(id + "x", "n", 5) == 5);
  CHECK(st.write(id + "x", R"({"a":2})", 3) == 4);
  std::uint64_t token = st.lock(id + "x", 1000, 0);
  st.unlock(id + "x", token);
  (void)st.touch(id + "x");
  std::string moved = st.rotate(id + "x");
  CHECK(moved.size() == 32);
  CHECK(st.destroy(moved));
  CHECK(st.stats().sessions >= 1);
  CHECK(st.destroy_all("user-1") == 1);

  sessync::session s3 = st.begin("");
  s3.set("k", "1");
  s3.abort();
  CHECK(!s3);
  {
    sessync::session dropped = st.begin_id(sessync::id_generate());
    dropped.set("k", "1");
  }  // destroyed unended: aborted, freed
}

static void test_errors() {
  sessync::store st = sessync::store::open("mem://");
  sessync::error e = expect_error([&] { (void)sessync::store::open("bogus://x"); }, sessync::status::invalid_argument);
  CHECK(e.message().find("scheme") != std::string::npos);
  CHECK(e.code().category() == sessync::sessync_category());
  CHECK(e.code() == sessync::status::invalid_argument);
  CHECK(e.code().value() == SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(std::string(e.code().category().name()) == "sessync");
  CHECK(std::string(e.what()).find(e.message()) != std::string::npos);

  expect_error([&] { sessync::id_check("short"); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.write(sessync::id_generate(), "[1]"); }, sessync::status::invalid_json);
  expect_error([&] { (void)st.write(sessync::id_generate(), "{bad"); }, sessync::status::invalid_json);
  std::string id = sessync::id_generate();
  (void)st.write(id, R"({"s":"x"})");
  expect_error([&] { (void)st.write(id, "{}", 7); }, sessync::status::conflict);
  expect_error([&] { (void)st.incr(id, "s"); }, sessync::status::not_a_number);
  CHECK(!st.fetch(sessync::id_generate()).has_value());
  sessync::options bad;
  expect_error([&] { bad.set("nope", "1"); }, sessync::status::invalid_argument);
  expect_error([&] { bad.set_cookie_format(static_cast<sessync_cookie_format>(9)); }, sessync::status::invalid_argument);
  expect_error([&] { bad.add_signing_key("short"); }, sessync::status::invalid_argument);

  sessync::session s = st.begin("");
  expect_error([&] { s.set("k", "not json"); }, sessync::status::invalid_json);
  expect_error([&] { s.set("k", "\xff"); }, sessync::status::invalid_utf8);
  // A session already ended: the C ABI's NULL check, as an exception.
  s.abort();
  expect_error([&] { s.set("k", "1"); }, sessync::status::null_argument);
  expect_error([&] { (void)s.commit(); }, sessync::status::null_argument);

  sessync::session holder = st.begin_id(id);
  expect_error([&] { (void)st.begin_id(id, SESSYNC_BEGIN_LOCK, 0); }, sessync::status::lock_timeout);
  holder.abort();
  sessync::store closed;
  expect_error([&] { (void)closed.fetch(id); }, sessync::status::null_argument);
}

static void test_async() {
  sessync::store st = sessync::store::open("mem://");
  std::string id = sessync::id_generate();
  (void)st.write(id, R"({"n":0})");

  // begin_async → commit_async through callables, with the lock waits in call order.
  sessync::session holder = st.begin_id(id);
  std::vector<std::unique_ptr<slot<std::string>>> done;
  for (int i = 0; i < 4; i++) done.push_back(std::make_unique<slot<std::string>>());
  for (int i = 0; i < 4; i++) {
    slot<std::string> *out = done[static_cast<std::size_t>(i)].get();
    (void)st.begin_id_async(id, [out](sessync::session s, const sessync::error *err) {
      if (err) {
        out->put("begin: " + err->message());
        return;
      }
      (void)s.incr("n");
      s.commit_async([out](std::string_view, const sessync::error *err2) { out->put(err2 ? err2->message() : "ok"); });
    });
  }
  holder.abort();
  for (auto &d : done) CHECK(d->take() == "ok");
  CHECK(st.fetch(id)->json.view() == R"({"n":4})");

  // A lock wait cancelled by its ticket, and one timed out.
  std::uint64_t token = st.lock(id, 10000, 0);
  slot<std::string> cancelled, timed_out;
  std::uint64_t ticket = st.lock_async(id, 1000, 60000, [&](std::uint64_t, const sessync::error *err) {
    cancelled.put(err ? std::string(sessync::status_str(err->status())) : "locked");
  });
  CHECK(sessync::ticket_cancel(ticket));
  CHECK(!cancelled.take().empty());
  (void)st.begin_async("", [&](sessync::session s, const sessync::error *err) {
    timed_out.put(err ? "error" : (s ? "session" : "empty"));
  }, 0);
  CHECK(timed_out.take() == "session");  // no cookie: a new session, no lock to wait for
  slot<int> lt;
  (void)st.lock_async(id, 1000, 20, [&](std::uint64_t, const sessync::error *err) {
    lt.put(err ? static_cast<int>(err->status()) : 0);
  });
  CHECK(lt.take() == static_cast<int>(sessync::status::lock_timeout));
  st.unlock(id, token);
  CHECK(!sessync::ticket_cancel(ticket));  // already completed
}

static void test_ttl() {
  using namespace std::chrono_literals;
  sessync::store st = sessync::store::open("mem://?ttl=30m");
  sessync::session s = st.begin("");
  s.set("k", "1");
  s.set_ttl(90s);
  std::string id = s.id();
  (void)s.commit();
  std::optional<sessync::record> r = st.get(id);
  CHECK(r && r->ttl() == std::optional<std::chrono::milliseconds>(90000ms));
  // The idle TTL is the session's own: it expires in about 90 s, not the store's 30 min.
  CHECK(r->expires_at() > r->created() && r->expires_at() - r->created() <= 91000);
  CHECK(st.fetch_record(id)->view().find("\"ttl\":90000") != std::string_view::npos);

  // A session that follows the store's ttl has none of its own.
  std::string plain = sessync::id_generate();
  (void)st.write(plain, "{}");
  CHECK(!st.get(plain)->ttl().has_value());
  CHECK(st.fetch_record(plain)->view().find("\"ttl\":null") != std::string_view::npos);

  // touch_ttl: a touch with a new TTL in one step, kept by later writes.
  CHECK(st.touch_ttl(plain, 5min));
  CHECK(st.get(plain)->ttl() == std::optional<std::chrono::milliseconds>(300000ms));
  (void)st.patch(plain, R"({"a":1})");
  CHECK(st.get(plain)->ttl() == std::optional<std::chrono::milliseconds>(300000ms));

  // A later request's set_ttl replaces it, with nothing else changed (a touch at commit).
  sessync::session s2 = st.begin_id(id);
  s2.set_ttl(2h);
  CHECK(s2.commit().empty());
  CHECK(st.get(id)->ttl() == std::optional<std::chrono::milliseconds>(7200000ms));

  // Out of range: the engine's invalid_argument, nothing changed.
  sessync::session s3 = st.begin_id(id);
  sessync::error e = expect_error([&] { s3.set_ttl(0ms); }, sessync::status::invalid_argument);
  CHECK(!e.message().empty());
  expect_error([&] { s3.set_ttl(-5s); }, sessync::status::invalid_argument);
  expect_error([&] { s3.set_ttl(std::chrono::hours(24 * 366)); }, sessync::status::invalid_argument);
  s3.abort();
  expect_error([&] { (void)st.touch_ttl(id, 0ms); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.touch_ttl(sessync::id_generate(), 1s); }, sessync::status::not_found);
  CHECK(st.get(id)->ttl() == std::optional<std::chrono::milliseconds>(7200000ms));

  // A new session with only a TTL set is still not stored.
  sessync::session empty = st.begin("");
  empty.set_ttl(1min);
  std::string empty_id = empty.id();
  (void)empty.commit();
  CHECK(!st.get(empty_id).has_value());
}

static void test_list_clear() {
  sessync::store st = sessync::store::open("mem://?shards=8");
  CHECK(st.list().ids.empty() && st.list().next_cursor == 0);
  std::unordered_set<std::string> want;
  for (int i = 0; i < 250; i++) {
    std::string id = sessync::id_generate();
    (void)st.write(id, R"({"i":1})");
    want.insert(id);
  }
  // Page by page, as the C manual says: cursor 0, then each next cursor until 0.
  std::unordered_set<std::string> got;
  std::uint64_t cursor = 0;
  int pages = 0;
  do {
    sessync::list_page page = st.list(cursor, 16);
    for (const std::string &id : page.ids) {
      sessync::id_check(id);
      got.insert(id);
    }
    cursor = page.next_cursor;
    pages++;
  } while (cursor != 0 && pages < 10000);
  CHECK(cursor == 0 && pages > 1);
  CHECK(got == want);
  std::vector<std::string> all = st.list_all();
  CHECK(all.size() == 250);
  CHECK(std::unordered_set<std::string>(all.begin(), all.end()) == want);
  expect_error([&] { (void)st.list(0, 0); }, sessync::status::invalid_argument);

  // An expired-or-destroyed session is not listed; clear counts the live ones.
  CHECK(st.destroy(all[0]));
  CHECK(st.list_all().size() == 249);
  CHECK(st.clear() == 249);
  CHECK(st.list_all().empty());
  CHECK(!st.fetch(all[1]).has_value());
  // Tombstoned as destroy() does: a request in flight cannot bring one back.
  expect_error([&] { (void)st.patch(all[1], R"({"x":1})"); }, sessync::status::destroyed);
  CHECK(st.clear() == 0);
}

static void test_async_drain() {
  using namespace std::chrono_literals;
  sessync::store st = sessync::store::open("mem://");
  std::string id = sessync::id_generate();
  (void)st.write(id, "{}");
  CHECK(sessync::async_drain(false, 0ms) == 0);  // nothing in flight

  std::uint64_t token = st.lock(id, 60000, 0);
  slot<int> first, second;
  (void)st.lock_async(id, 1000, 60000, [&](std::uint64_t, const sessync::error *err) {
    first.put(err ? static_cast<int>(err->status()) : 0);
  });
  // Without cancel the waiter stays pending: the drain gives up after its wait.
  CHECK(sessync::async_drain(false, 20ms) == 1);
  // With cancel, its callback comes with cancelled, and the drain sees it return.
  CHECK(sessync::async_drain(true, 10000ms) == 0);
  CHECK(first.take() == static_cast<int>(sessync::status::cancelled));

  // New calls after a drain work as before.
  (void)st.lock_async(id, 1000, 60000, [&](std::uint64_t t, const sessync::error *err) {
    second.put(err ? -1 : static_cast<int>(t != 0));
  });
  st.unlock(id, token);
  CHECK(second.take() == 1);
  CHECK(sessync::async_drain(false, 10000ms) == 0);
}

static void test_nul_in_strings_is_refused() {
  using namespace std::string_literals;
  sessync::store st = sessync::store::open("mem://");
  std::string id = sessync::id_generate();
  (void)st.write(id, R"({"a":1})");
  const std::string nul_key = "a\0b"s;
  CHECK(nul_key.size() == 3);
  sessync::session s = st.begin_id(id);
  sessync::error e = expect_error([&] { s.set(nul_key, "2"); }, sessync::status::invalid_argument);
  CHECK(e.message().find("NUL") != std::string::npos);
  expect_error([&] { (void)s.get(nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { (void)s.get_i64(nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { (void)s.get_bytes(nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { s.set_bytes(nul_key, "x"); }, sessync::status::invalid_argument);
  expect_error([&] { s.remove(nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { (void)s.incr(nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { s.set_owner("u\0v"s); }, sessync::status::invalid_argument);
  (void)std::move(s).commit();
  CHECK(st.fetch(id)->json.view() == R"({"a":1})");  // nothing written under "a"

  const std::string nul_id = id + "\0x"s;
  expect_error([&] { (void)st.fetch(nul_id); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.begin_id(nul_id); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.destroy(nul_id); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.incr(id, nul_key); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.sessions_of("u\0v"s); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.destroy_all("u\0v"s); }, sessync::status::invalid_argument);
  expect_error([&] { sessync::id_check(nul_id); }, sessync::status::invalid_argument);
  expect_error([&] { (void)st.begin_id_async(nul_id, [](sessync::session, const sessync::error *) {}); },
               sessync::status::invalid_argument);
  CHECK(st.fetch(id).has_value());  // not destroyed through the id's prefix
  expect_error([&] { (void)sessync::store::open("mem://\0?ttl=1ms"s); }, sessync::status::invalid_argument);
  sessync::options o;
  expect_error([&] { o.set("cookie_name\0x"s, "sid"); }, sessync::status::invalid_argument);
  expect_error([&] { o.set("cookie_name", "sid\0x"s); }, sessync::status::invalid_argument);
}

static void test_abort_async() {
  sessync::store st = sessync::store::open("mem://");
  std::string id = sessync::id_generate();
  (void)st.write(id, R"({"n":1})");
  sessync::session s = st.begin_id(id);
  (void)s.incr("n");
  slot<std::string> done;
  s.abort_async([&](std::string_view set_cookie, const sessync::error *err) {
    done.put(err ? "error: " + err->message() : (set_cookie.empty() ? "ok" : "cookie"));
  });
  CHECK(!s);  // consumed at once
  CHECK(done.take() == "ok");
  sessync::session again = st.begin_id(id, SESSYNC_BEGIN_LOCK, 0);  // the lock was released
  CHECK(again.get_i64("n") == 1);                                   // nothing was written
  again.abort();
  // An ended session: the C ABI's NULL check, thrown here (the callback never comes).
  expect_error([&] { again.abort_async([](std::string_view, const sessync::error *) { std::abort(); }); },
               sessync::status::null_argument);
}

static void test_callback_error_without_memory() {
  // Building the error for the callback allocates (its message); when that throws, the
  // callable gets the status's prebuilt error instead of the program ending.
  sessync::store st = sessync::store::open("mem://");
  std::string id = sessync::id_generate();
  (void)st.write(id, "{}");
  std::uint64_t token = st.lock(id, 60000, 0);
  struct result {
    int status = -1;
    bool prebuilt = false;
  };
  slot<result> got;
  g_fail_alloc = true;
  (void)st.lock_async(id, 1000, 20, [&](std::uint64_t, const sessync::error *err) {
    result r;
    r.status = err ? static_cast<int>(err->status()) : 0;
    r.prebuilt = err && err->message() == sessync::status_str(err->status());
    got.put(r);
  });
  result r = got.take();
  g_fail_alloc = false;
  CHECK(r.status == static_cast<int>(sessync::status::lock_timeout));
  CHECK(r.prebuilt);
  st.unlock(id, token);
}

int main() {
  g_main_thread = std::this_thread::get_id();
  test_version();
  test_flow();
  test_errors();
  test_async();
  test_ttl();
  test_list_clear();
  test_async_drain();
  test_nul_in_strings_is_refused();
  test_abort_async();
  test_callback_error_without_memory();
  std::puts("test_wrappers: ok");
  return 0;
}
