/*
 * session_flow.c: the request flow of the C ABI as a web server would drive it (begin
 * from the Cookie header, read and change the session, commit and send Set-Cookie), with
 * options, signed cookies and the request lock; then a smoke subset of the conformance
 * suite (tests/conformance) replayed through the store functions.
 */
#include "check.h"

#define COOKIE_TAIL "; Path=/; HttpOnly; SameSite=Lax"
#define REMOVAL_TAIL \
  "; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; SameSite=Lax"

/* Copies the session's id (borrowed from the handle) into `out`. */
static void copy_id(const sessync_session *s, char out[SESSYNC_ID_MAX_LEN + 1]) {
  const char *id = sessync_session_id(s);
  CHECK(id != NULL);
  CHECK(strlen(id) >= 16 && strlen(id) <= SESSYNC_ID_MAX_LEN);
  memcpy(out, id, strlen(id) + 1);
}

/* Begins a request whose Cookie header is `cookie` (NULL: no header). */
static sessync_session *begin(const sessync_store *store, const char *cookie, uint32_t flags) {
  sessync_session *s = NULL;
  if (cookie == NULL) {
    CHECK_OK(sessync_session_begin(store, NULL, 0, flags, -1, &s, NULL));
  } else {
    CHECK_OK(sessync_session_begin(store, BYTES(cookie), flags, -1, &s, NULL));
  }
  CHECK(s != NULL);
  return s;
}

/* Checks that `key` holds exactly the JSON text `json` in the session. */
static void check_get(sessync_session *s, const char *key, const char *json) {
  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_session_get(s, key, &b, NULL));
  if (!buf_is(&b, json)) {
    fprintf(stderr, "  key %s holds %s, expected %s\n", key,
            b.data ? (const char *)b.data : "(empty)", json);
  }
  CHECK(buf_is(&b, json));
  sessync_buf_free(&b);
}

/* Commits and checks the Set-Cookie value (NULL: none must be sent). */
static void commit_expecting(sessync_session *s, const char *set_cookie) {
  sessync_buf c = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  if (set_cookie == NULL) {
    CHECK(c.data == NULL && c.len == 0);
  } else {
    if (!buf_is(&c, set_cookie)) {
      fprintf(stderr, "  Set-Cookie: %s\n  expected:   %s\n",
              c.data ? (const char *)c.data : "(none)", set_cookie);
    }
    CHECK(buf_is(&c, set_cookie));
  }
  sessync_buf_free(&c);
}

/* The first visit, a second visit with the cookie, a forged cookie, and logout. */
static void first_and_second_request(sessync_store *store) {
  char id[SESSYNC_ID_MAX_LEN + 1];
  char expected[256];
  char header[256];

  /* A visitor without a cookie gets a fresh id; nothing is stored yet. */
  sessync_session *s = begin(store, NULL, 0);
  CHECK(sessync_session_is_new(s));
  copy_id(s, id);
  CHECK(strlen(id) == 32);
  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(store, id, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);

  CHECK_OK(sessync_session_set(s, "user", BYTES("\"ann\""), NULL));
  CHECK_OK(sessync_session_set(s, "theme", BYTES("\"dark\""), NULL));
  CHECK_OK(sessync_session_set(s, "cart", BYTES("[1,{\"sku\":\"x\"}]"), NULL));
  check_get(s, "user", "\"ann\"");
  check_get(s, "cart", "[1,{\"sku\":\"x\"}]");
  int64_t visits = 0;
  CHECK_OK(sessync_session_incr(s, "visits", 1, &visits, NULL));
  CHECK(visits == 1);
  CHECK_OK(sessync_session_incr(s, "visits", 2, &visits, NULL));
  CHECK(visits == 3);
  CHECK_OK(sessync_session_incr(s, "visits", 0, NULL, NULL));
  CHECK_OK(sessync_session_remove(s, "theme", NULL));
  CHECK_OK(sessync_session_remove(s, "never-set", NULL));
  CHECK_STATUS(sessync_session_get(s, "theme", &b, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK(b.data == NULL);
  CHECK_OK(sessync_session_data(s, &b, NULL));
  CHECK(buf_is(&b, "{\"cart\":[1,{\"sku\":\"x\"}],\"user\":\"ann\",\"visits\":3}"));
  sessync_buf_free(&b);

  /* The first commit stores the session and sends its cookie. */
  snprintf(expected, sizeof expected, "sync_sess=%s" COOKIE_TAIL, id);
  commit_expecting(s, expected);
  CHECK(has_data(store, id, "{\"cart\":[1,{\"sku\":\"x\"}],\"user\":\"ann\",\"visits\":3}", 1));

  /* The browser sends the cookie back among others: the session is found. */
  snprintf(header, sizeof header, "theme=dark; sync_sess=%s; lang=en", id);
  s = begin(store, header, 0);
  CHECK(!sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), id) == 0);
  check_get(s, "user", "\"ann\"");
  check_get(s, "visits", "3");
  CHECK_OK(sessync_session_incr(s, "visits", 1, &visits, NULL));
  CHECK(visits == 4);
  /* Nothing new to tell the browser: no Set-Cookie. */
  commit_expecting(s, NULL);
  CHECK(has_data(store, id, "{\"cart\":[1,{\"sku\":\"x\"}],\"user\":\"ann\",\"visits\":4}", 2));

  /* A request that changes nothing writes nothing. */
  s = begin(store, header, 0);
  commit_expecting(s, NULL);
  CHECK(has_data(store, id, "{\"cart\":[1,{\"sku\":\"x\"}],\"user\":\"ann\",\"visits\":4}", 2));

  /* set_cookie_out may be NULL. */
  s = begin(store, header, 0);
  CHECK_OK(sessync_session_set(s, "seen", BYTES("true"), NULL));
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  /* Even when a cookie would have been sent (a new session): nothing may leak. */
  s = begin(store, NULL, 0);
  CHECK_OK(sessync_session_set(s, "x", BYTES("1"), NULL));
  CHECK_OK(sessync_session_commit(s, NULL, NULL));

  /* A forged id (well formed, never issued) is not adopted, and nothing is made for it. */
  const char *forged_id = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
  snprintf(header, sizeof header, "sync_sess=%s", forged_id);
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), forged_id) != 0);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  char fresh[SESSYNC_ID_MAX_LEN + 1];
  copy_id(s, fresh);
  snprintf(expected, sizeof expected, "sync_sess=%s" COOKIE_TAIL, fresh);
  commit_expecting(s, expected);
  CHECK_STATUS(sessync_store_fetch(store, forged_id, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);

  /* Malformed cookies are ignored, never adopted. */
  static const char *const junk[] = {
      "sync_sess=../../etc/passwd",
      "sync_sess=short",
      "sync_sess=\"quoted\"",
      "sync_sess=",
      "sync_sess",
      ";;;=;",
      "sync_sess=\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6\xf5\xf4\xf3\xf2\xf1\xf0",
  };
  for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++) {
    s = begin(store, junk[i], 0);
    CHECK(sessync_session_is_new(s));
    CHECK_OK(sessync_session_abort(s, NULL));
  }

  /* Logout: destroy + commit sends a removal cookie; the id is dead for good. */
  snprintf(header, sizeof header, "sync_sess=%s", id);
  s = begin(store, header, 0);
  CHECK(!sessync_session_is_new(s));
  CHECK_OK(sessync_session_destroy(s, NULL));
  commit_expecting(s, "sync_sess=" REMOVAL_TAIL);
  CHECK_STATUS(sessync_store_fetch(store, id, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_STATUS(sessync_store_write(store, id, BYTES("{}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
  /* The old cookie now gets a fresh session. */
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), id) != 0);
  sessync_session_free(s);
}

/* Login: rotation gives a fresh id, sends it, and the owner index follows. */
static void login_rotates(sessync_store *store) {
  char before[SESSYNC_ID_MAX_LEN + 1], after[SESSYNC_ID_MAX_LEN + 1];
  char header[256], expected[256];
  sessync_session *s = begin(store, NULL, 0);
  CHECK_OK(sessync_session_set(s, "cart", BYTES("[7]"), NULL));
  copy_id(s, before);
  snprintf(expected, sizeof expected, "sync_sess=%s" COOKIE_TAIL, before);
  commit_expecting(s, expected);

  snprintf(header, sizeof header, "sync_sess=%s", before);
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  CHECK_OK(sessync_session_rotate(s, NULL));
  copy_id(s, after);
  CHECK(strcmp(before, after) != 0);
  CHECK_OK(sessync_session_set_owner(s, "user-42", NULL));
  CHECK_OK(sessync_session_set(s, "user", BYTES("42"), NULL));
  snprintf(expected, sizeof expected, "sync_sess=%s" COOKIE_TAIL, after);
  commit_expecting(s, expected);

  CHECK(has_data(store, after, "{\"cart\":[7],\"user\":42}", 2));
  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_sessions_of(store, "user-42", &b, NULL));
  snprintf(expected, sizeof expected, "[\"%s\"]", after);
  CHECK(buf_is(&b, expected));
  sessync_buf_free(&b);

  /* A request that begins with the old cookie, even in the grace period, is not moved
   * over: whoever knew the old id must not get the login's (session fixation). */
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), after) != 0);
  sessync_buf none = {NULL, 0};
  CHECK_STATUS(sessync_session_get(s, "user", &none, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_OK(sessync_session_abort(s, NULL));

  /* Log out everywhere. */
  size_t n = 0;
  CHECK_OK(sessync_store_destroy_all(store, "user-42", &n, NULL));
  CHECK(n == 1);
}

/* An options object: cookie name, signing key, TTL; a signed cookie's round trip. */
static void options_and_signed_cookies(void) {
  sessync_options *opts = NULL;
  CHECK_OK(sessync_options_new(&opts, NULL));
  CHECK(opts != NULL);
  CHECK_OK(sessync_options_set(opts, "cookie_name", "app_sid", NULL));
  CHECK_OK(sessync_options_set(opts, "ttl", "10m", NULL));
  CHECK_OK(sessync_options_set(opts, "cookie_same_site", "Strict", NULL));
  static const uint8_t key[32] = "0123456789abcdef0123456789abcde";
  CHECK_OK(sessync_options_add_signing_key(opts, key, sizeof key, NULL));
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://?max_sessions=1000", opts, &store, NULL));
  /* The store copied the options. */
  sessync_options_free(opts);

  sessync_session *s = begin(store, NULL, 0);
  char id[SESSYNC_ID_MAX_LEN + 1];
  copy_id(s, id);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  sessync_buf c = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  CHECK(c.data != NULL);
  const char *text = (const char *)c.data;

  /* app_sid=<id>.<43 characters of signature>; Path=/; HttpOnly; SameSite=Strict */
  size_t id_len = strlen(id);
  CHECK(strncmp(text, "app_sid=", 8) == 0);
  CHECK(strncmp(text + 8, id, id_len) == 0);
  CHECK(text[8 + id_len] == '.');
  const char *semi = strchr(text, ';');
  CHECK(semi != NULL);
  CHECK((size_t)(semi - (text + 8 + id_len + 1)) == 43);
  CHECK(strcmp(semi, "; Path=/; HttpOnly; SameSite=Strict") == 0);

  /* The browser sends back name=value. */
  char value[128], header[256];
  size_t value_len = (size_t)(semi - (text + 8));
  CHECK(value_len < sizeof value);
  memcpy(value, text + 8, value_len);
  value[value_len] = 0;
  sessync_buf_free(&c);

  snprintf(header, sizeof header, "a=b; app_sid=%s", value);
  s = begin(store, header, 0);
  CHECK(!sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), id) == 0);
  check_get(s, "k", "1");
  CHECK_OK(sessync_session_abort(s, NULL));

  /* A signature with one character changed is refused. */
  char bad[128];
  memcpy(bad, value, value_len + 1);
  bad[value_len - 5] = bad[value_len - 5] == 'A' ? 'B' : 'A';
  snprintf(header, sizeof header, "app_sid=%s", bad);
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  sessync_session_free(s);
  /* So is the bare id, and the right value under the default cookie name. */
  snprintf(header, sizeof header, "app_sid=%s", id);
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  sessync_session_free(s);
  snprintf(header, sizeof header, "sync_sess=%s", value);
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  sessync_session_free(s);

  /* The idle TTL came from the options: expires_at is last_access + 10 min. */
  CHECK_OK(sessync_store_fetch_record(store, id, &c, NULL));
  const char *la = strstr((const char *)c.data, "\"last_access\":");
  const char *ex = strstr((const char *)c.data, "\"expires_at\":");
  CHECK(la != NULL && ex != NULL);
  unsigned long long last_access = strtoull(la + strlen("\"last_access\":"), NULL, 10);
  unsigned long long expires_at = strtoull(ex + strlen("\"expires_at\":"), NULL, 10);
  CHECK(expires_at - last_access == 10ULL * 60 * 1000);
  sessync_buf_free(&c);

  sessync_store_free(store);
}

/* express-session's cookie format: connect.sid=s%3A<id>.<signature>, read back; the
 * same store refuses the bare id, and a store without a key cannot be opened. */
static void express_cookies(void) {
  sessync_options *opts = NULL;
  CHECK_OK(sessync_options_new(&opts, NULL));
  CHECK_OK(sessync_options_set_cookie_format(opts, SESSYNC_COOKIE_FORMAT_EXPRESS, NULL));
  CHECK_OK(sessync_options_set(opts, "cookie_name", "connect.sid", NULL));
  sessync_store *store = NULL;
  CHECK(sessync_store_open("mem://", opts, &store, NULL) == SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(store == NULL);
  CHECK(strstr(sessync_last_error_message(), "express") != NULL);
  static const char secret[] = "the express app's secret";
  CHECK_OK(sessync_options_add_signing_key(opts, (const uint8_t *)secret, strlen(secret), NULL));
  CHECK_OK(sessync_store_open("mem://", opts, &store, NULL));
  sessync_options_free(opts);

  sessync_session *s = begin(store, NULL, 0);
  char id[SESSYNC_ID_MAX_LEN + 1];
  copy_id(s, id);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  sessync_buf c = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &c, NULL));
  const char *text = (const char *)c.data;
  size_t id_len = strlen(id);
  CHECK(strncmp(text, "connect.sid=s%3A", 16) == 0);
  CHECK(strncmp(text + 16, id, id_len) == 0);
  CHECK(text[16 + id_len] == '.');
  const char *semi = strchr(text, ';');
  CHECK(semi != NULL && strcmp(semi, COOKIE_TAIL) == 0);

  char header[256];
  snprintf(header, sizeof header, "a=b; %.*s", (int)(semi - text), text);
  sessync_buf_free(&c);
  s = begin(store, header, 0);
  CHECK(!sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), id) == 0);
  check_get(s, "k", "1");
  CHECK_OK(sessync_session_abort(s, NULL));

  snprintf(header, sizeof header, "connect.sid=%s", id);
  s = begin(store, header, 0);
  CHECK(sessync_session_is_new(s));
  sessync_session_free(s);
  sessync_store_free(store);
}

/* The request lock: abort and free release it; a second request waits for it. */
static void request_lock(sessync_store *store) {
  char id[SESSYNC_ID_MAX_LEN + 1], header[256];
  sessync_session *s = begin(store, NULL, 0);
  CHECK_OK(sessync_session_set(s, "n", BYTES("0"), NULL));
  copy_id(s, id);
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  snprintf(header, sizeof header, "sync_sess=%s", id);

  /* While a locked request runs, nobody else gets the lock. */
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  uint64_t t = 0;
  CHECK_STATUS(sessync_store_lock(store, id, 1000, 0, &t, NULL), SESSYNC_STATUS_LOCK_TIMEOUT);
  CHECK_OK(sessync_session_set(s, "n", BYTES("1"), NULL));
  /* Abort writes nothing and releases the lock. */
  CHECK_OK(sessync_session_abort(s, NULL));
  CHECK(has_data(store, id, "{\"n\":0}", 1));
  CHECK_OK(sessync_store_lock(store, id, 1000, 0, &t, NULL));
  CHECK(t != 0);
  CHECK_OK(sessync_store_unlock(store, id, t, NULL));

  /* So does freeing a session that was neither committed nor aborted. */
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  CHECK_OK(sessync_session_set(s, "n", BYTES("2"), NULL));
  CHECK_STATUS(sessync_store_lock(store, id, 1000, 0, &t, NULL), SESSYNC_STATUS_LOCK_TIMEOUT);
  sessync_session_free(s);
  CHECK(has_data(store, id, "{\"n\":0}", 1));
  uint64_t t2 = 0;
  CHECK_OK(sessync_store_lock(store, id, 1000, 0, &t2, NULL));
  CHECK(t2 > t);
  CHECK_OK(sessync_store_unlock(store, id, t2, NULL));

  /* A locked request's commit writes and releases in one step. */
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  CHECK_OK(sessync_session_set(s, "n", BYTES("3"), NULL));
  commit_expecting(s, NULL);
  CHECK(has_data(store, id, "{\"n\":3}", 2));
  CHECK_OK(sessync_store_lock(store, id, 1000, 0, &t, NULL));
  CHECK_OK(sessync_store_unlock(store, id, t, NULL));

  /* A locked request with nothing to write releases the lock at commit. */
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  commit_expecting(s, NULL);
  CHECK_OK(sessync_store_lock(store, id, 1000, 0, &t, NULL));
  CHECK_OK(sessync_store_unlock(store, id, t, NULL));

  /* A request whose session was destroyed meanwhile cannot write it back. */
  s = begin(store, header, SESSYNC_BEGIN_LOCK);
  CHECK_OK(sessync_session_set(s, "n", BYTES("4"), NULL));
  CHECK_OK(sessync_store_destroy(store, id, NULL, NULL));
  CHECK_STATUS(sessync_session_commit(s, NULL, NULL), SESSYNC_STATUS_DESTROYED);
  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(store, id, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
}

/* A session begun on a store keeps it alive after the caller's handle is freed. */
static void session_outlives_store_handle(void) {
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", NULL, &store, NULL));
  sessync_session *s = begin(store, NULL, SESSYNC_BEGIN_LOCK);
  sessync_session *t = begin(store, NULL, 0);
  sessync_store_free(store);
  CHECK_OK(sessync_session_set(s, "k", BYTES("1"), NULL));
  check_get(s, "k", "1");
  char expected[256];
  snprintf(expected, sizeof expected, "sync_sess=%s" COOKIE_TAIL, sessync_session_id(s));
  commit_expecting(s, expected);
  /* The last session ends: the store goes with it. */
  sessync_session_free(t);
}

/*
 * The conformance suite's smoke subset (tests/conformance/mod.rs): write and versions,
 * compare-and-swap, merge patch, the lock and stale tokens, the destroy tombstone.
 * Each case runs on a fresh store opened with the suite's base options.
 */
#define BASE_URL                                                                             \
  "mem://?ttl=60s&absolute_ttl=1h&touch_fraction=0.5&tombstone_ttl=120s&rotate_grace=5s&" \
  "max_session_bytes=4096"

enum op { STOP, WRITE, CAS, PATCH, INCR, FETCH, ABSENT, LOCK, UNLOCK, DESTROY };

struct step {
  enum op op;
  const char *json;   /* WRITE, CAS, PATCH, FETCH: the data; INCR: the key */
  int64_t n;          /* CAS: expected version; INCR: by; LOCK: wait in ms */
  int token;          /* LOCK: the slot the token goes to; others: the token used (0: none) */
  sessync_status want;
  int64_t result;     /* the new version, the sum, or (FETCH) the version; -1: any */
};

struct smoke_case {
  const char *name;
  struct step steps[16]; /* ends at the first STOP (zero) step */
};

#define OK SESSYNC_STATUS_OK

static const struct smoke_case smoke[] = {
    {"write creates at version 1 and every write adds one",
     {{WRITE, "{\"n\":1}", 0, 0, OK, 1},
      {FETCH, "{\"n\":1}", 0, 0, OK, 1},
      {WRITE, "{\"n\":2,\"s\":\"x\"}", 0, 0, OK, 2},
      {FETCH, "{\"n\":2,\"s\":\"x\"}", 0, 0, OK, 2},
     }},
    {"write with an expected version is a compare-and-swap",
     {{CAS, "{\"v\":1}", 0, 0, OK, 1},
      {CAS, "{\"v\":2}", 0, 0, SESSYNC_STATUS_CONFLICT, 0},
      {CAS, "{\"v\":2}", 1, 0, OK, 2},
      {CAS, "{\"v\":3}", 1, 0, SESSYNC_STATUS_CONFLICT, 0},
      {FETCH, "{\"v\":2}", 0, 0, OK, 2},
     }},
    {"patch is an RFC 7396 merge patch: null deletes, objects merge",
     {{WRITE, "{\"a\":1,\"b\":{\"c\":1},\"keep\":true}", 0, 0, OK, 1},
      {PATCH, "{\"a\":null,\"b\":{\"d\":2},\"n\":[1]}", 0, 0, OK, 2},
      {FETCH, "{\"b\":{\"c\":1,\"d\":2},\"keep\":true,\"n\":[1]}", 0, 0, OK, 2},
      {PATCH, "{\"b\":{\"c\":null}}", 0, 0, OK, 3},
      {FETCH, "{\"b\":{\"d\":2},\"keep\":true,\"n\":[1]}", 0, 0, OK, 3},
     }},
    {"the lock excludes other holders and tokenless writers",
     {{WRITE, "{\"n\":0}", 0, 0, OK, 1},
      {LOCK, NULL, 0, 1, OK, -1},
      {LOCK, NULL, 0, 2, SESSYNC_STATUS_LOCK_TIMEOUT, 0},
      {WRITE, "{\"n\":9}", 0, 0, SESSYNC_STATUS_LOCKED, 0},
      {PATCH, "{\"n\":9}", 0, 0, SESSYNC_STATUS_LOCKED, 0},
      {INCR, "n", 1, 1, OK, 1},
      {UNLOCK, NULL, 0, 1, OK, 0},
      {UNLOCK, NULL, 0, 1, SESSYNC_STATUS_STALE_TOKEN, 0},
      {INCR, "n", 1, 1, SESSYNC_STATUS_STALE_TOKEN, 0},
      {LOCK, NULL, 0, 3, OK, -1},
      {WRITE, "{\"n\":5}", 0, 1, SESSYNC_STATUS_STALE_TOKEN, 0},
      {WRITE, "{\"n\":5}", 0, 3, OK, 3},
      {UNLOCK, NULL, 0, 3, OK, 0},
      {FETCH, "{\"n\":5}", 0, 0, OK, 3},
     }},
    {"destroy leaves a tombstone that refuses late writes",
     {{WRITE, "{\"user\":1}", 0, 0, OK, 1},
      {DESTROY, NULL, 0, 0, OK, 1},
      {ABSENT, NULL, 0, 0, SESSYNC_STATUS_NOT_FOUND, 0},
      {WRITE, "{\"user\":1}", 0, 0, SESSYNC_STATUS_DESTROYED, 0},
      {PATCH, "{\"user\":1}", 0, 0, SESSYNC_STATUS_DESTROYED, 0},
      {INCR, "n", 1, 0, SESSYNC_STATUS_DESTROYED, 0},
      {LOCK, NULL, 0, 1, SESSYNC_STATUS_DESTROYED, 0},
      {ABSENT, NULL, 0, 0, SESSYNC_STATUS_NOT_FOUND, 0},
      {DESTROY, NULL, 0, 0, OK, 0},
     }},
};

static void run_smoke_case(const struct smoke_case *c) {
  static const char *id = "conformance-smoke-a-0001";
  uint64_t tokens[4] = {0, 0, 0, 0};
  uint64_t max_token = 0;
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open(BASE_URL, NULL, &store, NULL));
  for (const struct step *s = c->steps; s->op != STOP; s++) {
    uint64_t v = 0;
    int64_t got = 0;
    sessync_status rc;
    uint64_t token = tokens[s->token];
    switch (s->op) {
      case WRITE:
        rc = sessync_store_write(store, id, BYTES(s->json), NULL, token, 0, &v, NULL);
        got = (int64_t)v;
        break;
      case CAS: {
        uint64_t expected = (uint64_t)s->n;
        rc = sessync_store_write(store, id, BYTES(s->json), &expected, token, 0, &v, NULL);
        got = (int64_t)v;
        break;
      }
      case PATCH:
        rc = sessync_store_patch(store, id, BYTES(s->json), token, 0, &v, NULL);
        got = (int64_t)v;
        break;
      case INCR:
        rc = sessync_store_incr(store, id, s->json, s->n, token, 0, &got, NULL);
        break;
      case FETCH:
      case ABSENT: {
        sessync_buf b = {NULL, 0};
        rc = sessync_store_fetch(store, id, &b, &v, NULL);
        got = (int64_t)v;
        if (rc == OK && !buf_is(&b, s->json)) {
          fprintf(stderr, "%s: fetched %s, expected %s\n", c->name, (const char *)b.data,
                  s->json);
          CHECK(!"fetch returned other data");
        }
        sessync_buf_free(&b);
        break;
      }
      case LOCK:
        rc = sessync_store_lock(store, id, 10000, (uint64_t)s->n, &tokens[s->token], NULL);
        if (rc == OK) {
          /* Every token is greater than every earlier one. */
          CHECK(tokens[s->token] > max_token);
          max_token = tokens[s->token];
        }
        break;
      case UNLOCK:
        rc = sessync_store_unlock(store, id, token, NULL);
        break;
      case DESTROY: {
        bool existed = false;
        rc = sessync_store_destroy(store, id, &existed, NULL);
        got = existed;
        break;
      }
      default:
        rc = SESSYNC_STATUS_PANIC;
        CHECK(!"unknown step");
    }
    if (rc != s->want || (rc == OK && s->result >= 0 && got != s->result)) {
      fprintf(stderr, "case \"%s\", step %d: status %u (%s), result %lld; expected %u, %lld\n",
              c->name, (int)(s - c->steps), (unsigned)rc, sessync_status_str(rc),
              (long long)got, (unsigned)s->want, (long long)s->result);
      CHECK(!"conformance smoke step failed");
    }
  }
  sessync_store_free(store);
}

int main(void) {
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", NULL, &store, NULL));

  first_and_second_request(store);
  login_rotates(store);
  request_lock(store);
  options_and_signed_cookies();
  express_cookies();
  session_outlives_store_handle();

  for (size_t i = 0; i < sizeof smoke / sizeof smoke[0]; i++) {
    run_smoke_case(&smoke[i]);
  }
  printf("session_flow: %zu conformance smoke cases ok\n", sizeof smoke / sizeof smoke[0]);

  sessync_store_free(store);
  printf("session_flow: ok\n");
  return 0;
}
