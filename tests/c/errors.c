/*
 * errors.c: every error path of the C ABI returns its own status, says why in the last
 * error message, leaves every output untouched and changes no data.
 *
 * Outputs start as sentinels and are checked after each failure; sessions are checked
 * with has_data() (same JSON, same version) after each group of failures.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stddef.h>

#include "check.h"

#define ID "errors-session-00001"
#define DATA "{\"n\":1,\"s\":\"text\"}"
#define BAD_UTF8_ID "errors-\xff\xfe-session-01"

/* Sentinels: outputs are set to these before a call that must fail. */
static max_align_t sentinel_object;
#define SENTINEL_PTR ((void *)&sentinel_object)
#define SENTINEL_U64 UINT64_C(0x5e55c0ffee)
#define SENTINEL_LEN ((size_t)4242)

static sessync_buf sentinel_buf(void) {
  sessync_buf b = {(uint8_t *)SENTINEL_PTR, SENTINEL_LEN};
  return b;
}

#define CHECK_SENTINEL_BUF(b) CHECK((b).data == (uint8_t *)SENTINEL_PTR && (b).len == SENTINEL_LEN)

/* Fails with `status` and a last error containing `text`. */
#define CHECK_FAILS(call, status, text) \
  do {                                  \
    CHECK_STATUS(call, status);         \
    CHECK_ERROR_HAS(text);              \
  } while (0)

static sessync_store *open_store(const char *url) {
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open(url, NULL, &store, NULL));
  CHECK(store != NULL);
  return store;
}

static sessync_session *begin_plain(const sessync_store *store) {
  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin(store, NULL, 0, 0, -1, &s, NULL));
  return s;
}

static void null_arguments(sessync_store *store) {
  const sessync_status NUL = SESSYNC_STATUS_NULL_ARGUMENT;
  sessync_buf b = sentinel_buf();
  uint64_t v = SENTINEL_U64;
  int64_t n = (int64_t)SENTINEL_U64;
  size_t len = SENTINEL_LEN;
  bool flag = true;
  sessync_stats stats;
  memset(&stats, 0x5e, sizeof stats);
  sessync_store *store_out = (sessync_store *)SENTINEL_PTR;

  CHECK_FAILS(sessync_store_open(NULL, NULL, &store_out, NULL), NUL, "`url`");
  CHECK(store_out == (sessync_store *)SENTINEL_PTR);
  CHECK_FAILS(sessync_store_open("mem://", NULL, NULL, NULL), NUL, "`store_out`");

  CHECK_FAILS(sessync_store_fetch(NULL, ID, &b, &v, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_fetch(store, NULL, &b, &v, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_fetch(store, ID, NULL, &v, NULL), NUL, "`json_out`");
  CHECK_SENTINEL_BUF(b);
  CHECK(v == SENTINEL_U64);
  CHECK_FAILS(sessync_store_fetch_record(NULL, ID, &b, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_fetch_record(store, NULL, &b, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_fetch_record(store, ID, NULL, NULL), NUL, "`json_out`");
  CHECK_SENTINEL_BUF(b);

  CHECK_FAILS(sessync_store_write(NULL, ID, BYTES("{}"), NULL, 0, 0, &v, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_write(store, NULL, BYTES("{}"), NULL, 0, 0, &v, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_write(store, ID, NULL, 2, NULL, 0, 0, &v, NULL), NUL, "`json`");
  CHECK_FAILS(sessync_store_patch(NULL, ID, BYTES("{}"), 0, 0, &v, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_patch(store, NULL, BYTES("{}"), 0, 0, &v, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_patch(store, ID, NULL, 2, 0, 0, &v, NULL), NUL, "`json`");
  CHECK(v == SENTINEL_U64);
  CHECK_FAILS(sessync_store_incr(NULL, ID, "n", 1, 0, 0, &n, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_incr(store, NULL, "n", 1, 0, 0, &n, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_incr(store, ID, NULL, 1, 0, 0, &n, NULL), NUL, "`key`");
  CHECK(n == (int64_t)SENTINEL_U64);

  CHECK_FAILS(sessync_store_lock(NULL, ID, 1000, 0, &v, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_lock(store, NULL, 1000, 0, &v, NULL), NUL, "`id`");
  /* Without somewhere to put the token, the lock must not be taken. */
  CHECK_FAILS(sessync_store_lock(store, ID, 1000, 0, NULL, NULL), NUL, "`token_out`");
  CHECK(v == SENTINEL_U64);
  uint64_t t = 0;
  CHECK_OK(sessync_store_lock(store, ID, 1000, 0, &t, NULL));
  CHECK_FAILS(sessync_store_unlock(NULL, ID, t, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_unlock(store, NULL, t, NULL), NUL, "`id`");
  CHECK_OK(sessync_store_unlock(store, ID, t, NULL));

  CHECK_FAILS(sessync_store_touch(NULL, ID, &flag, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_touch(store, NULL, &flag, NULL), NUL, "`id`");
  CHECK_FAILS(sessync_store_destroy(NULL, ID, &flag, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_destroy(store, NULL, &flag, NULL), NUL, "`id`");
  CHECK(flag);

  char id_out[SESSYNC_ID_MAX_LEN + 1] = "untouched";
  CHECK_FAILS(sessync_store_rotate(NULL, ID, 0, id_out, sizeof id_out, &len, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_rotate(store, NULL, 0, id_out, sizeof id_out, &len, NULL), NUL, "`id`");
  CHECK(strcmp(id_out, "untouched") == 0);
  CHECK(len == SENTINEL_LEN);

  CHECK_FAILS(sessync_store_set_owner(NULL, ID, "u", 0, &v, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_set_owner(store, NULL, "u", 0, &v, NULL), NUL, "`id`");
  CHECK(v == SENTINEL_U64);
  CHECK_FAILS(sessync_store_sessions_of(NULL, "u", &b, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_sessions_of(store, NULL, &b, NULL), NUL, "`owner`");
  CHECK_FAILS(sessync_store_sessions_of(store, "u", NULL, NULL), NUL, "`json_out`");
  CHECK_SENTINEL_BUF(b);
  CHECK_FAILS(sessync_store_destroy_all(NULL, "u", &len, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_destroy_all(store, NULL, &len, NULL), NUL, "`owner`");
  CHECK(len == SENTINEL_LEN);
  CHECK_FAILS(sessync_store_stats(NULL, &stats, sizeof stats, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_store_stats(store, NULL, sizeof(sessync_stats), NULL), NUL, "`stats_out`");
  CHECK(stats.sessions == UINT64_C(0x5e5e5e5e5e5e5e5e));

  /* The request flow. */
  sessync_session *s = (sessync_session *)SENTINEL_PTR;
  CHECK_FAILS(sessync_session_begin(NULL, NULL, 0, 0, -1, &s, NULL), NUL, "`store`");
  CHECK_FAILS(sessync_session_begin(store, NULL, 0, 0, -1, NULL, NULL), NUL, "`session_out`");
  CHECK_FAILS(sessync_session_begin(store, NULL, 5, 0, -1, &s, NULL), NUL, "`cookie`");
  CHECK(s == (sessync_session *)SENTINEL_PTR);

  CHECK_FAILS(sessync_session_get(NULL, "k", &b, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_data(NULL, &b, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_set(NULL, "k", BYTES("1"), NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_remove(NULL, "k", NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_incr(NULL, "k", 1, &n, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_set_owner(NULL, "u", NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_rotate(NULL, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_destroy(NULL, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_commit(NULL, &b, NULL), NUL, "`session`");
  CHECK_FAILS(sessync_session_abort(NULL, NULL), NUL, "`session`");
  CHECK(sessync_session_id(NULL) == NULL);
  CHECK(!sessync_session_is_new(NULL));
  CHECK_SENTINEL_BUF(b);

  s = begin_plain(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  CHECK_FAILS(sessync_session_get(s, NULL, &b, NULL), NUL, "`key`");
  CHECK_FAILS(sessync_session_get(s, "k", NULL, NULL), NUL, "`json_out`");
  CHECK_FAILS(sessync_session_data(s, NULL, NULL), NUL, "`json_out`");
  CHECK_FAILS(sessync_session_set(s, NULL, BYTES("2"), NULL), NUL, "`key`");
  CHECK_FAILS(sessync_session_set(s, "k", NULL, 1, NULL), NUL, "`json`");
  CHECK_FAILS(sessync_session_remove(s, NULL, NULL), NUL, "`key`");
  CHECK_FAILS(sessync_session_incr(s, NULL, 1, &n, NULL), NUL, "`key`");
  CHECK_SENTINEL_BUF(b);
  CHECK(n == (int64_t)SENTINEL_U64);
  /* The failures changed nothing in the session. */
  sessync_buf d = {NULL, 0};
  CHECK_OK(sessync_session_data(s, &d, NULL));
  CHECK(buf_is(&d, "{\"k\":1}"));
  sessync_buf_free(&d);
  sessync_session_free(s);

  sessync_options *o = (sessync_options *)SENTINEL_PTR;
  CHECK_FAILS(sessync_options_new(NULL, NULL), NUL, "`options_out`");
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_FAILS(sessync_options_set(NULL, "ttl", "1m", NULL), NUL, "`options`");
  CHECK_FAILS(sessync_options_set(o, NULL, "1m", NULL), NUL, "`key`");
  CHECK_FAILS(sessync_options_set(o, "ttl", NULL, NULL), NUL, "`value`");
  CHECK_FAILS(sessync_options_add_signing_key(NULL, BYTES("0123456789abcdef"), NULL), NUL,
              "`options`");
  CHECK_FAILS(sessync_options_add_signing_key(o, NULL, 16, NULL), NUL, "`key`");
  CHECK_FAILS(sessync_options_set_cookie_format(NULL, SESSYNC_COOKIE_FORMAT_EXPRESS, NULL), NUL,
              "`options`");
  sessync_options_free(o);

  CHECK(has_data(store, ID, DATA, 1));
}

static void invalid_utf8(sessync_store *store) {
  const sessync_status U = SESSYNC_STATUS_INVALID_UTF8;
  sessync_buf b = sentinel_buf();
  uint64_t v = SENTINEL_U64;
  int64_t n = (int64_t)SENTINEL_U64;
  size_t len = SENTINEL_LEN;

  CHECK_FAILS(sessync_store_fetch(store, BAD_UTF8_ID, &b, &v, NULL), U, "`id`");
  CHECK_FAILS(sessync_store_write(store, BAD_UTF8_ID, BYTES("{}"), NULL, 0, 0, &v, NULL), U, "`id`");
  CHECK_FAILS(sessync_store_destroy(store, BAD_UTF8_ID, NULL, NULL), U, "`id`");
  CHECK_FAILS(sessync_store_incr(store, ID, "\xc3\x28", 1, 0, 0, &n, NULL), U, "`key`");
  CHECK_FAILS(sessync_store_set_owner(store, ID, "user-\xe2\x82", 0, &v, NULL), U, "`owner`");
  CHECK_FAILS(sessync_store_sessions_of(store, "\x80user", &b, NULL), U, "`owner`");
  CHECK_FAILS(sessync_store_destroy_all(store, "\x80user", &len, NULL), U, "`owner`");
  /* JSON bytes that are not UTF-8 (a bare \xff inside a string). */
  CHECK_FAILS(sessync_store_write(store, ID, BYTES("{\"a\":\"\xff\"}"), NULL, 0, 0, &v, NULL), U,
              "`json`");
  CHECK_FAILS(sessync_store_patch(store, ID, BYTES("{\"a\":\"\xc0\xaf\"}"), 0, 0, &v, NULL), U,
              "`json`");
  CHECK_SENTINEL_BUF(b);
  CHECK(v == SENTINEL_U64);
  CHECK(n == (int64_t)SENTINEL_U64);
  CHECK(len == SENTINEL_LEN);

  sessync_store *st = (sessync_store *)SENTINEL_PTR;
  CHECK_FAILS(sessync_store_open("mem://?ttl=\xff", NULL, &st, NULL), U, "`url`");
  CHECK(st == (sessync_store *)SENTINEL_PTR);
  sessync_options *o = NULL;
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_FAILS(sessync_options_set(o, "cookie_\xff", "x", NULL), U, "`key`");
  CHECK_FAILS(sessync_options_set(o, "cookie_name", "sid\xff", NULL), U, "`value`");
  sessync_options_free(o);

  sessync_session *s = begin_plain(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("\"v\""), NULL));
  CHECK_FAILS(sessync_session_set(s, "\xfe", BYTES("1"), NULL), U, "`key`");
  CHECK_FAILS(sessync_session_set(s, "k", BYTES("\"\xff\""), NULL), U, "`json`");
  CHECK_FAILS(sessync_session_get(s, "\xfe", &b, NULL), U, "`key`");
  CHECK_FAILS(sessync_session_remove(s, "k\xfe", NULL), U, "`key`");
  CHECK_FAILS(sessync_session_incr(s, "k\xfe", 1, &n, NULL), U, "`key`");
  CHECK_FAILS(sessync_session_set_owner(s, "\xfe", NULL), U, "`owner`");
  CHECK_SENTINEL_BUF(b);
  sessync_buf d = {NULL, 0};
  CHECK_OK(sessync_session_data(s, &d, NULL));
  CHECK(buf_is(&d, "{\"k\":\"v\"}"));
  sessync_buf_free(&d);
  CHECK_OK(sessync_session_abort(s, NULL));

  CHECK(has_data(store, ID, DATA, 1));
}

static void invalid_json(sessync_store *store) {
  const sessync_status J = SESSYNC_STATUS_INVALID_JSON;
  uint64_t v = SENTINEL_U64;
  static const char *const not_objects[] = {
      "{\"ok\":", "[1,2]", "\"str\"", "42", "null", "{\"a\":1} trailing", "{\"a\":NaN}",
      "{'a':1}", "{\"a\":1,}", " ",
  };
  for (size_t i = 0; i < sizeof not_objects / sizeof not_objects[0]; i++) {
    CHECK_FAILS(sessync_store_write(store, ID, BYTES(not_objects[i]), NULL, 0, 0, &v, NULL), J,
                "JSON");
    CHECK_FAILS(sessync_store_patch(store, ID, BYTES(not_objects[i]), 0, 0, &v, NULL), J, "JSON");
  }
  /* No bytes at all (NULL is allowed with length 0) is not JSON either. */
  CHECK_FAILS(sessync_store_write(store, ID, NULL, 0, NULL, 0, 0, &v, NULL), J, "JSON");
  CHECK_FAILS(sessync_store_patch(store, ID, NULL, 0, 0, 0, &v, NULL), J, "JSON");
  CHECK_FAILS(sessync_store_write(store, ID, BYTES("[1,2]"), NULL, 0, 0, &v, NULL), J, "object");
  CHECK(v == SENTINEL_U64);
  /* A new id is not created by a refused write. */
  sessync_buf b = sentinel_buf();
  CHECK_FAILS(sessync_store_write(store, "errors-never-created-1", BYTES("[]"), NULL, 0, 0, &v, NULL),
              J, "object");
  CHECK_STATUS(sessync_store_fetch(store, "errors-never-created-1", &b, &v, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK_SENTINEL_BUF(b);

  sessync_session *s = begin_plain(store);
  CHECK_FAILS(sessync_session_set(s, "k", BYTES("{"), NULL), J, "JSON");
  CHECK_FAILS(sessync_session_set(s, "k", NULL, 0, NULL), J, "JSON");
  CHECK_FAILS(sessync_session_set(s, "k", BYTES("1 2"), NULL), J, "JSON");
  CHECK_STATUS(sessync_session_get(s, "k", &b, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_SENTINEL_BUF(b);
  sessync_session_free(s);

  CHECK(has_data(store, ID, DATA, 1));
}

static void malformed_ids(sessync_store *store) {
  const sessync_status A = SESSYNC_STATUS_INVALID_ARGUMENT;
  static const char *const bad_ids[] = {
      "",
      "short",
      "fifteen-chars-x",                                   /* 15 */
      "this-id-is-forty-nine-characters-long-01234567890", /* 49 */
      "has a space in it..",
      "dots.are.not.allowed.x",
      "errors-session-00001\n",
  };
  for (size_t i = 0; i < sizeof bad_ids / sizeof bad_ids[0]; i++) {
    const char *id = bad_ids[i];
    sessync_buf b = sentinel_buf();
    uint64_t v = SENTINEL_U64;
    char out[SESSYNC_ID_MAX_LEN + 1] = "untouched";
    size_t len = SENTINEL_LEN;
    CHECK_FAILS(sessync_store_fetch(store, id, &b, &v, NULL), A, "session id");
    CHECK_FAILS(sessync_store_write(store, id, BYTES("{}"), NULL, 0, 0, &v, NULL), A, "session id");
    CHECK_FAILS(sessync_store_patch(store, id, BYTES("{}"), 0, SESSYNC_WRITE_CREATE, &v, NULL), A,
                "session id");
    CHECK_FAILS(sessync_store_lock(store, id, 1000, 0, &v, NULL), A, "session id");
    CHECK_FAILS(sessync_store_destroy(store, id, NULL, NULL), A, "session id");
    CHECK_FAILS(sessync_store_rotate(store, id, 0, out, sizeof out, &len, NULL), A, "session id");
    CHECK_SENTINEL_BUF(b);
    CHECK(v == SENTINEL_U64);
    CHECK(strcmp(out, "untouched") == 0 && len == SENTINEL_LEN);
  }
  CHECK(has_data(store, ID, DATA, 1));
}

static void expect_open_fails(const char *url, const sessync_options *opts, const char *text) {
  sessync_store *st = (sessync_store *)SENTINEL_PTR;
  CHECK_FAILS(sessync_store_open(url, opts, &st, NULL), SESSYNC_STATUS_INVALID_ARGUMENT, text);
  CHECK(st == (sessync_store *)SENTINEL_PTR);
}

static void bad_urls_and_options(void) {
  const sessync_status A = SESSYNC_STATUS_INVALID_ARGUMENT;
  expect_open_fails("ftp://x", NULL, "\"ftp\"");
  expect_open_fails("mem://?ttl=abc", NULL, "ttl");
  expect_open_fails("mem://?colour=red", NULL, "colour");
  expect_open_fails("nonsense", NULL, "store URL");
  expect_open_fails("", NULL, "store URL");
  expect_open_fails("mem://host", NULL, "no host");
  expect_open_fails("mem://?ttl=1&ttl=2", NULL, "twice");
  expect_open_fails("mem://?ttl=2h&absolute_ttl=1h", NULL, "absolute_ttl");
  expect_open_fails("mem://?max_session_bytes=1", NULL, "max_session_bytes");
  expect_open_fails("mem://?shards=3", NULL, "shards");
  expect_open_fails("mem://?evict=fifo", NULL, "evict");

  sessync_options *o = NULL;
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_FAILS(sessync_options_set(o, "colour", "red", NULL), A, "colour");
  CHECK_FAILS(sessync_options_set(o, "lock_lease", "abc", NULL), A, "lock_lease");
  CHECK_FAILS(sessync_options_set(o, "lock_wait", "5 minutes", NULL), A, "lock_wait");
  CHECK_FAILS(sessync_options_set(o, "cookie_secure", "maybe", NULL), A, "cookie_secure");
  CHECK_FAILS(sessync_options_set(o, "cookie_same_site", "Sideways", NULL), A, "cookie_same_site");
  CHECK_FAILS(sessync_options_set(o, "cookie_max_age", "soon", NULL), A, "cookie_max_age");
  CHECK_FAILS(sessync_options_set(o, "cookie_format", "connect", NULL), A, "cookie_format");
  CHECK_FAILS(sessync_options_set_cookie_format(o, 2, NULL), A, "cookie format 2");
  /* A store option given both in the URL and in the options. */
  CHECK_OK(sessync_options_set(o, "ttl", "5m", NULL));
  expect_open_fails("mem://?ttl=10m", o, "twice");

  /* The failed sets changed nothing: the cookie is still the default one. */
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", o, &store, NULL));
  sessync_session *s = begin_plain(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  sessync_buf c = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  CHECK(c.data != NULL);
  CHECK(strncmp((const char *)c.data, "sync_sess=", 10) == 0);
  CHECK(strstr((const char *)c.data, "; Path=/; HttpOnly; SameSite=Lax") != NULL);
  CHECK(strchr((const char *)c.data, '.') == NULL);
  sessync_buf_free(&c);
  sessync_store_free(store);
  sessync_options_free(o);

  /* A malformed store option in the options object is refused, by the set or the open. */
  CHECK_OK(sessync_options_new(&o, NULL));
  sessync_status rc = sessync_options_set(o, "ttl", "abc", NULL);
  if (rc == SESSYNC_STATUS_OK) {
    expect_open_fails("mem://", o, "ttl");
  } else {
    CHECK(rc == A);
    CHECK_ERROR_HAS("ttl");
  }
  sessync_options_free(o);

  /* Cookie settings are checked as a whole when the store opens. */
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_OK(sessync_options_set(o, "cookie_same_site", "None", NULL));
  expect_open_fails("mem://", o, "secure");
  CHECK_OK(sessync_options_set(o, "cookie_secure", "true", NULL));
  CHECK_OK(sessync_store_open("mem://", o, &store, NULL));
  sessync_store_free(store);
  rc = sessync_options_set(o, "cookie_name", "bad name", NULL);
  if (rc == SESSYNC_STATUS_OK) {
    expect_open_fails("mem://", o, "cookie name");
  } else {
    CHECK(rc == A);
  }
  sessync_options_free(o);

  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_OK(sessync_options_set(o, "lock_lease", "0", NULL));
  expect_open_fails("mem://", o, "lock_lease");
  sessync_options_free(o);
}

static void signing_keys(void) {
  const sessync_status A = SESSYNC_STATUS_INVALID_ARGUMENT;
  static uint8_t big[1025];
  memset(big, 'k', sizeof big);
  sessync_options *o = NULL;
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_FAILS(sessync_options_add_signing_key(o, BYTES("fifteen-bytes!!"), NULL), A, "16");
  CHECK_FAILS(sessync_options_add_signing_key(o, NULL, 0, NULL), A, "16");
  CHECK_FAILS(sessync_options_add_signing_key(o, big, sizeof big, NULL), A, "1024");

  /* No key was added: cookies are unsigned (no "." in the value). */
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", o, &store, NULL));
  sessync_session *s = begin_plain(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  sessync_buf c = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  CHECK(c.data != NULL && strchr((const char *)c.data, '.') == NULL);
  sessync_buf_free(&c);
  sessync_store_free(store);

  /* The limits themselves are accepted; now cookies are signed. */
  CHECK_OK(sessync_options_add_signing_key(o, BYTES("sixteen-bytes!!!"), NULL));
  CHECK_OK(sessync_options_add_signing_key(o, big, sizeof big - 1, NULL));
  CHECK_OK(sessync_store_open("mem://", o, &store, NULL));
  s = begin_plain(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  CHECK(c.data != NULL && strchr((const char *)c.data, '.') != NULL);
  sessync_buf_free(&c);
  sessync_store_free(store);
  sessync_options_free(o);
}

static void unknown_flags(sessync_store *store) {
  const sessync_status A = SESSYNC_STATUS_INVALID_ARGUMENT;
  uint64_t v = SENTINEL_U64;
  int64_t n = (int64_t)SENTINEL_U64;
  CHECK_FAILS(sessync_store_write(store, ID, BYTES("{}"), NULL, 0, 4, &v, NULL), A, "flags");
  CHECK_FAILS(sessync_store_patch(store, ID, BYTES("{\"x\":1}"), 0, 4, &v, NULL), A, "flags");
  CHECK_FAILS(sessync_store_incr(store, ID, "n", 1, 0, UINT32_C(0x80000000), &n, NULL), A, "flags");
  CHECK(v == SENTINEL_U64);
  CHECK(n == (int64_t)SENTINEL_U64);
  sessync_session *s = (sessync_session *)SENTINEL_PTR;
  CHECK_FAILS(sessync_session_begin(store, NULL, 0, 2, -1, &s, NULL), A, "flags");
  CHECK(s == (sessync_session *)SENTINEL_PTR);
  CHECK(has_data(store, ID, DATA, 1));
}

static void too_large(void) {
  const sessync_status L = SESSYNC_STATUS_TOO_LARGE;
  sessync_store *store = open_store("mem://?max_session_bytes=100");
  const char *id = "errors-small-session-1";
  CHECK_OK(sessync_store_write(store, id, BYTES("{\"a\":1}"), NULL, 0, 0, NULL, NULL));

  char big[256];
  memset(big, 0, sizeof big);
  strcpy(big, "{\"big\":\"");
  memset(big + strlen(big), 'x', 200 - strlen(big) - 2);
  strcat(big, "\"}");
  CHECK(strlen(big) == 200);
  uint64_t v = SENTINEL_U64;
  CHECK_FAILS(sessync_store_write(store, id, BYTES(big), NULL, 0, 0, &v, NULL), L, "max_session_bytes");
  CHECK_FAILS(sessync_store_patch(store, id, BYTES(big), 0, 0, &v, NULL), L, "max_session_bytes");
  CHECK_FAILS(sessync_store_write(store, "errors-small-session-2", BYTES(big), NULL, 0, 0, &v, NULL), L,
              "max_session_bytes");
  CHECK(v == SENTINEL_U64);
  CHECK(has_data(store, id, "{\"a\":1}", 1));
  sessync_buf b = sentinel_buf();
  CHECK_STATUS(sessync_store_fetch(store, "errors-small-session-2", &b, &v, NULL),
               SESSYNC_STATUS_NOT_FOUND);

  /* A key over 1024 bytes. */
  static char long_key[1026];
  memset(long_key, 'k', 1025);
  int64_t n = (int64_t)SENTINEL_U64;
  CHECK_FAILS(sessync_store_incr(store, id, long_key, 1, 0, 0, &n, NULL), L, "key");
  CHECK(n == (int64_t)SENTINEL_U64);

  /* In a request: one value too big is refused at once ... */
  char big_value[160];
  memset(big_value, 0, sizeof big_value);
  big_value[0] = '"';
  memset(big_value + 1, 'x', 150);
  big_value[151] = '"';
  sessync_session *s = begin_plain(store);
  CHECK_FAILS(sessync_session_set(s, "big", BYTES(big_value), NULL), L, "max_session_bytes");
  CHECK_STATUS(sessync_session_get(s, "big", &b, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_SENTINEL_BUF(b);
  sessync_session_free(s);

  /* ... values small enough one by one but too big together are refused at commit. */
  char header[128];
  snprintf(header, sizeof header, "sync_sess=%s", id);
  CHECK_OK(sessync_session_begin(store, BYTES(header), 0, -1, &s, NULL));
  CHECK(!sessync_session_is_new(s));
  char value[64];
  memset(value, 0, sizeof value);
  value[0] = '"';
  memset(value + 1, 'v', 60);
  value[61] = '"';
  CHECK_OK(sessync_session_set(s, "v1", BYTES(value), NULL));
  CHECK_OK(sessync_session_set(s, "v2", BYTES(value), NULL));
  b = sentinel_buf();
  CHECK_FAILS(sessync_session_commit(s, &b, NULL), L, "max_session_bytes");
  CHECK_SENTINEL_BUF(b);
  CHECK(has_data(store, id, "{\"a\":1}", 1));

  /* An input over 16 MiB is refused before it is read. */
  size_t huge = (size_t)16 * 1024 * 1024 + 1;
  uint8_t *bytes = malloc(huge);
  CHECK(bytes != NULL);
  memset(bytes, ' ', huge);
  CHECK_FAILS(sessync_store_write(store, id, bytes, huge, NULL, 0, 0, &v, NULL), L, "over the limit");
  free(bytes);

  CHECK(has_data(store, id, "{\"a\":1}", 1));
  sessync_store_free(store);
}

static void insufficient_size(sessync_store *store) {
  char small[SESSYNC_ID_MAX_LEN + 1];
  memset(small, 'x', sizeof small);
  size_t len = SENTINEL_LEN;

  /* Ten bytes, and no buffer at all: the needed length comes back, nothing rotates. */
  CHECK_FAILS(sessync_store_rotate(store, ID, 0, small, 10, &len, NULL),
              SESSYNC_STATUS_INSUFFICIENT_SIZE, "bytes");
  CHECK(len == 32);
  for (size_t i = 0; i < sizeof small; i++) {
    CHECK(small[i] == 'x');
  }
  len = SENTINEL_LEN;
  CHECK_STATUS(sessync_store_rotate(store, ID, 0, NULL, 0, &len, NULL),
               SESSYNC_STATUS_INSUFFICIENT_SIZE);
  CHECK(len == 32);
  /* The id's length is not enough: the NUL needs one more byte. */
  len = SENTINEL_LEN;
  CHECK_STATUS(sessync_store_rotate(store, ID, 0, small, 32, &len, NULL),
               SESSYNC_STATUS_INSUFFICIENT_SIZE);
  CHECK(len == 32);
  CHECK(small[0] == 'x');

  /* The id was not rotated: it still takes writes, and no alias exists. */
  sessync_stats st;
  CHECK_OK(sessync_store_stats(store, &st, sizeof st, NULL));
  CHECK(st.aliases == 0);
  /* The per-command counters, what the sessions count against max_memory, and an
     in-process store without a persistence log. */
  CHECK(st.ops_write >= 1 && st.ops_fetch >= 1 && st.ops_rotate == 0);
  CHECK(st.memory > 0);
  CHECK(st.persist_enabled == 0 && st.persist_records == 0 && st.persist_failed == 0);
  CHECK(has_data(store, ID, DATA, 1));

  /* 33 bytes are enough (on a copy, so ID stays as it is for the other checks). */
  const char *copy = "errors-rotate-copy-01";
  CHECK_OK(sessync_store_write(store, copy, BYTES("{}"), NULL, 0, 0, NULL, NULL));
  CHECK_OK(sessync_store_rotate(store, copy, 0, small, 33, &len, NULL));
  CHECK(len == 32 && strlen(small) == 32);
  CHECK(has_data(store, small, "{}", 1));
}

static void not_a_number(sessync_store *store) {
  const sessync_status N = SESSYNC_STATUS_NOT_A_NUMBER;
  const char *id = "errors-numbers-000001";
  const char *data = "{\"big\":9223372036854775807,\"f\":1.5,\"o\":{},\"s\":\"text\"}";
  CHECK_OK(sessync_store_write(store, id, BYTES(data), NULL, 0, 0, NULL, NULL));
  int64_t n = (int64_t)SENTINEL_U64;
  CHECK_FAILS(sessync_store_incr(store, id, "s", 1, 0, 0, &n, NULL), N, "\"s\"");
  CHECK_FAILS(sessync_store_incr(store, id, "f", 1, 0, 0, &n, NULL), N, "\"f\"");
  CHECK_FAILS(sessync_store_incr(store, id, "o", 1, 0, 0, &n, NULL), N, "\"o\"");
  CHECK_FAILS(sessync_store_incr(store, id, "big", 1, 0, 0, &n, NULL), N, "overflow");
  CHECK(n == (int64_t)SENTINEL_U64);
  CHECK(has_data(store, id, data, 1));

  char header[128];
  sessync_session *s = NULL;
  snprintf(header, sizeof header, "sync_sess=%s", id);
  CHECK_OK(sessync_session_begin(store, BYTES(header), 0, -1, &s, NULL));
  CHECK_FAILS(sessync_session_incr(s, "s", 1, &n, NULL), N, "\"s\"");
  CHECK_FAILS(sessync_session_incr(s, "big", 1, &n, NULL), N, "overflow");
  CHECK(n == (int64_t)SENTINEL_U64);
  sessync_buf d = {NULL, 0};
  CHECK_OK(sessync_session_data(s, &d, NULL));
  CHECK(buf_is(&d, data));
  sessync_buf_free(&d);
  /* Nothing changed, so nothing is written. */
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  CHECK(has_data(store, id, data, 1));
}

static void other_argument_errors(sessync_store *store) {
  const sessync_status A = SESSYNC_STATUS_INVALID_ARGUMENT;
  uint64_t v = SENTINEL_U64;
  CHECK_FAILS(sessync_store_set_owner(store, ID, "", 0, &v, NULL), A, "owner");
  CHECK_FAILS(sessync_store_lock(store, ID, 0, 0, &v, NULL), A, "lease");
  CHECK(v == SENTINEL_U64);
  CHECK(has_data(store, ID, DATA, 1));
}

static void status_texts(void) {
  const char *texts[22];
  for (uint32_t i = 0; i <= 21; i++) {
    texts[i] = sessync_status_str(i);
    CHECK(texts[i] != NULL && texts[i][0] != 0);
    for (uint32_t j = 0; j < i; j++) {
      CHECK(strcmp(texts[i], texts[j]) != 0);
    }
  }
  CHECK(strcmp(sessync_status_str(SESSYNC_STATUS_OK), "ok") == 0);
  CHECK(strcmp(sessync_status_str(SESSYNC_STATUS_NOT_FOUND), "not found") == 0);
  CHECK(strcmp(sessync_status_str(SESSYNC_STATUS_PANIC), "internal error (panic)") == 0);
  /* Unknown numbers read as INVALID_ARGUMENT. */
  const char *invalid = sessync_status_str(SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strcmp(sessync_status_str(22), invalid) == 0);
  CHECK(strcmp(sessync_status_str(999), invalid) == 0);
  CHECK(strcmp(sessync_status_str(UINT32_MAX), invalid) == 0);
}

static void frees(sessync_store *store) {
  sessync_store_free(NULL);
  sessync_session_free(NULL);
  sessync_options_free(NULL);
  sessync_buf_free(NULL);
  sessync_buf empty = {NULL, 0};
  sessync_buf_free(&empty);
  CHECK(empty.data == NULL && empty.len == 0);

  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_fetch(store, ID, &b, NULL, NULL));
  CHECK(b.data != NULL);
  sessync_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);
  /* The first free emptied it, so the second is a no-op. */
  sessync_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);
}

static void *fresh_thread(void *arg) {
  (void)arg;
  /* Nothing failed on this thread yet. */
  CHECK(strcmp(sessync_last_error_message(), "") == 0);
  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(NULL, ID, &b, NULL, NULL), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_ERROR_HAS("`store`");
  return NULL;
}

static void last_error_is_per_thread(sessync_store *store) {
  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(store, "errors-no-such-session", &b, NULL, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK_ERROR_HAS("not found");
  pthread_t th;
  CHECK(pthread_create(&th, NULL, fresh_thread, NULL) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  /* The other thread's failure did not replace this thread's message. */
  CHECK_ERROR_HAS("not found");
  CHECK(sessync_last_error_message() != NULL);
}

int main(void) {
  sessync_store *store = open_store("mem://");
  uint64_t v = 0;
  CHECK_OK(sessync_store_write(store, ID, BYTES(DATA), NULL, 0, 0, &v, NULL));
  CHECK(v == 1);

  null_arguments(store);
  invalid_utf8(store);
  invalid_json(store);
  malformed_ids(store);
  bad_urls_and_options();
  signing_keys();
  unknown_flags(store);
  too_large();
  insufficient_size(store);
  not_a_number(store);
  other_argument_errors(store);
  status_texts();
  frees(store);
  last_error_is_per_thread(store);

  CHECK(has_data(store, ID, DATA, 1));
  sessync_store_free(store);
  printf("errors: ok\n");
  return 0;
}
