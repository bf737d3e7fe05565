/*
 * What language bindings need of the C ABI: errors read on another thread than the call's,
 * the lock, begin and commit completing through callbacks (waiters in call order, a
 * waiter that gives up), sessions named by the caller, session getters, ids, opaque
 * bytes, and stats sized by the caller. Every new function is also fed NULL and garbage.
 */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define WAITERS 32

/* ---- a latch: the main thread waits until callbacks have counted down ---- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void wait_until(const int *done, int want) {
  pthread_mutex_lock(&mu);
  while (*done < want) {
    pthread_cond_wait(&cv, &mu);
  }
  pthread_mutex_unlock(&mu);
}

static void mark(int *done) {
  pthread_mutex_lock(&mu);
  (*done)++;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static sessync_store *g_store;

static void make_session_in(sessync_store *store, const char *id) {
  CHECK_OK(sessync_store_write(store, id, BYTES("{\"n\":0}"), NULL, 0, 0, NULL, NULL));
}

static void make_session(const char *id) { make_session_in(g_store, id); }

/* ---- errors that survive a thread hop ---- */

struct hop {
  sessync_error err;
  sessync_status rc;
};

static void *fail_elsewhere(void *arg) {
  struct hop *h = arg;
  sessync_buf b = {NULL, 0};
  h->rc = sessync_store_fetch(g_store, "bindings-never-there-0", &b, NULL, &h->err);
  return NULL;
}

static void errors_survive_a_thread_hop(void) {
  struct hop h;
  memset(&h, 0, sizeof h);
  pthread_t th;
  CHECK(pthread_create(&th, NULL, fail_elsewhere, &h) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  /* Read on this thread, which never failed: the error came with the call. */
  CHECK(h.rc == SESSYNC_STATUS_NOT_FOUND);
  CHECK(h.err.status == SESSYNC_STATUS_NOT_FOUND);
  CHECK(strstr(h.err.message, "not found") != NULL);
  CHECK(h.err.len == strlen(h.err.message));
  CHECK(strcmp(sessync_last_error_message(), "") == 0);

  /* Success leaves it as it was; each failure replaces it. */
  make_session("bindings-hop-session-01");
  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_fetch(g_store, "bindings-hop-session-01", &b, NULL, &h.err));
  sessync_buf_free(&b);
  CHECK(h.err.status == SESSYNC_STATUS_NOT_FOUND);
  CHECK_STATUS(sessync_store_fetch(g_store, "bad id", &b, NULL, &h.err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(h.err.status == SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(h.err.message, "session id") != NULL);
  /* The per-thread message says the same. */
  CHECK_ERROR_HAS("session id");
  /* A NULL argument is reported through it too. */
  CHECK_STATUS(sessync_store_fetch(NULL, "bindings-hop-session-01", &b, NULL, &h.err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(strstr(h.err.message, "`store`") != NULL);
}

/* ---- the async lock: 32 waiters in call order, one cancelled, one timed out ---- */

#define LOCK_ID "bindings-lock-session-01"

struct waiter {
  int index;
  sessync_status status;
  uint64_t token;
  char message[504];
};

static int order[WAITERS + 8];
static int finished;
static struct waiter waiters[WAITERS + 2];

static void on_lock(void *userdata, sessync_status status, uint64_t token,
                    const sessync_error *error) {
  struct waiter *w = userdata;
  w->status = status;
  w->token = token;
  if (error) {
    CHECK(error->status == status);
    snprintf(w->message, sizeof w->message, "%s", error->message);
  } else {
    CHECK(status == SESSYNC_STATUS_OK);
  }
  pthread_mutex_lock(&mu);
  order[finished] = w->index;
  pthread_mutex_unlock(&mu);
  if (status == SESSYNC_STATUS_OK) {
    /* Hand the lock on to the next waiter, from the library's thread. */
    CHECK(sessync_store_unlock(g_store, LOCK_ID, token, NULL) == SESSYNC_STATUS_OK);
  }
  mark(&finished);
}

static void async_lock_waiters_in_order(void) {
  make_session(LOCK_ID);
  uint64_t holder = 0;
  CHECK_OK(sessync_store_lock(g_store, LOCK_ID, 30000, 0, &holder, NULL));

  uint64_t tickets[WAITERS + 2];
  /* Waiter 10 will give up by cancelling; waiter 20 by its wait running out. */
  for (int i = 0; i < WAITERS + 2; i++) {
    waiters[i].index = i;
    uint64_t wait = i == 20 ? 1 : 60000;
    CHECK_OK(sessync_store_lock_async(g_store, LOCK_ID, 30000, wait, on_lock, &waiters[i],
                                      &tickets[i], NULL));
  }
  /* Tickets are distinct. */
  for (int i = 1; i < WAITERS + 2; i++) {
    CHECK(tickets[i] != tickets[i - 1]);
  }
  bool cancelled = false;
  CHECK_OK(sessync_ticket_cancel(tickets[10], &cancelled, NULL));
  CHECK(cancelled);
  /* The two that gave up finish while the lock is still held. */
  wait_until(&finished, 2);
  CHECK_OK(sessync_ticket_cancel(tickets[10], &cancelled, NULL));
  CHECK(!cancelled); /* already decided */
  CHECK(waiters[10].status == SESSYNC_STATUS_CANCELLED);
  CHECK(strstr(waiters[10].message, "cancelled") != NULL);
  CHECK(waiters[20].status == SESSYNC_STATUS_LOCK_TIMEOUT);

  CHECK_OK(sessync_store_unlock(g_store, LOCK_ID, holder, NULL));
  wait_until(&finished, WAITERS + 2);
  /* The others got the lock one after another, in the order they asked for it. */
  int next = 0;
  uint64_t last = holder;
  for (int k = 2; k < WAITERS + 2; k++) {
    while (next == 10 || next == 20) {
      next++;
    }
    CHECK(order[k] == next);
    CHECK(waiters[next].status == SESSYNC_STATUS_OK);
    CHECK(waiters[next].token > last);
    last = waiters[next].token;
    next++;
  }
  /* Nobody holds it now, and a ticket that finished cannot be cancelled. */
  uint64_t t = 0;
  CHECK_OK(sessync_store_lock(g_store, LOCK_ID, 1000, 0, &t, NULL));
  CHECK_OK(sessync_store_unlock(g_store, LOCK_ID, t, NULL));
  CHECK_OK(sessync_ticket_cancel(tickets[0], &cancelled, NULL));
  CHECK(!cancelled);
}

/* ---- begin and commit through callbacks ---- */

struct flow {
  int done;
  sessync_status status;
  sessync_session *session;
  char cookie[512];
};

static void on_begin(void *userdata, sessync_status status, sessync_session *session,
                     const sessync_error *error) {
  struct flow *f = userdata;
  CHECK((status == SESSYNC_STATUS_OK) == (session != NULL));
  CHECK((status == SESSYNC_STATUS_OK) == (error == NULL));
  f->status = status;
  f->session = session;
  mark(&f->done);
}

static void on_commit(void *userdata, sessync_status status, const sessync_buf *set_cookie,
                      const sessync_error *error) {
  struct flow *f = userdata;
  CHECK((status == SESSYNC_STATUS_OK) == (error == NULL));
  f->status = status;
  f->cookie[0] = 0;
  if (set_cookie && set_cookie->data) {
    snprintf(f->cookie, sizeof f->cookie, "%s", (const char *)set_cookie->data);
  }
  mark(&f->done);
}

static void begin_and_commit_async(void) {
  /* A new visitor: begin without a cookie, count, commit; the cookie comes back. */
  struct flow f = {0};
  uint64_t ticket = 0;
  CHECK_OK(sessync_session_begin_async(g_store, NULL, 0, SESSYNC_BEGIN_LOCK, -1, on_begin, &f,
                                       &ticket, NULL));
  wait_until(&f.done, 1);
  CHECK(f.status == SESSYNC_STATUS_OK);
  CHECK(sessync_session_is_new(f.session));
  CHECK_OK(sessync_session_incr(f.session, "n", 1, NULL, NULL));
  CHECK_OK(sessync_session_commit_async(f.session, on_commit, &f, NULL));
  wait_until(&f.done, 2);
  CHECK(f.status == SESSYNC_STATUS_OK);
  CHECK(strncmp(f.cookie, "sync_sess=", 10) == 0);
  char header[512];
  snprintf(header, sizeof header, "%.*s", (int)strcspn(f.cookie, ";"), f.cookie);

  /* The same visitor while another request holds the lock: the begin waits for it. */
  sessync_session *held = NULL;
  CHECK_OK(sessync_session_begin(g_store, BYTES(header), SESSYNC_BEGIN_LOCK, 0, &held, NULL));
  struct flow g = {0};
  CHECK_OK(sessync_session_begin_async(g_store, BYTES(header), SESSYNC_BEGIN_LOCK, 60000,
                                       on_begin, &g, &ticket, NULL));
  CHECK_OK(sessync_session_incr(held, "n", 10, NULL, NULL));
  CHECK_OK(sessync_session_commit(held, NULL, NULL));
  wait_until(&g.done, 1);
  CHECK(g.status == SESSYNC_STATUS_OK);
  int64_t n = 0;
  /* It saw the first request's write: it waited for the lock. */
  CHECK_OK(sessync_session_get_i64(g.session, "n", &n, NULL));
  CHECK(n == 11);
  CHECK(sessync_session_token(g.session) != 0);

  /* A begin that gives up: cancelled while it waits behind g's lock. */
  struct flow c = {0};
  CHECK_OK(sessync_session_begin_async(g_store, BYTES(header), SESSYNC_BEGIN_LOCK, 60000,
                                       on_begin, &c, &ticket, NULL));
  bool cancelled = false;
  CHECK_OK(sessync_ticket_cancel(ticket, &cancelled, NULL));
  CHECK(cancelled);
  wait_until(&c.done, 1);
  CHECK(c.status == SESSYNC_STATUS_CANCELLED && c.session == NULL);
  CHECK_OK(sessync_session_abort(g.session, NULL));
}

/* ---- sessions named by the caller, and the session getters ---- */

static void begin_by_id(void) {
  const char *id = "bindings-by-id-session-0001";
  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin_id(g_store, id, SESSYNC_BEGIN_LOCK, -1, &s, NULL));
  CHECK(sessync_session_is_new(s));
  CHECK(strcmp(sessync_session_id(s), id) == 0);
  CHECK(sessync_session_version(s) == 0 && sessync_session_expires_at(s) == 0);
  CHECK(sessync_session_token(s) == 0); /* nothing to lock yet */
  CHECK(!sessync_session_changed(s));
  CHECK_OK(sessync_session_set(s, "user", BYTES("\"ann\""), NULL));
  CHECK(sessync_session_changed(s));
  sessync_buf cookie = {NULL, 0};
  CHECK_OK(sessync_session_commit(s, &cookie, NULL));
  CHECK(cookie.data == NULL); /* the framework sends its own cookie */
  CHECK(has_data(g_store, id, "{\"user\":\"ann\"}", 1));

  CHECK_OK(sessync_session_begin_id(g_store, id, SESSYNC_BEGIN_LOCK, 0, &s, NULL));
  CHECK(!sessync_session_is_new(s));
  CHECK(sessync_session_version(s) == 1);
  CHECK(sessync_session_expires_at(s) > 0);
  CHECK(sessync_session_token(s) != 0);
  /* Locked: a second begin with no wait times out. */
  sessync_session *t = NULL;
  sessync_error err;
  CHECK_STATUS(sessync_session_begin_id(g_store, id, SESSYNC_BEGIN_LOCK, 0, &t, &err),
               SESSYNC_STATUS_LOCK_TIMEOUT);
  CHECK(t == NULL && err.status == SESSYNC_STATUS_LOCK_TIMEOUT);
  CHECK_OK(sessync_session_abort(s, NULL));

  /* The same through a callback. */
  struct flow f = {0};
  CHECK_OK(sessync_session_begin_id_async(g_store, id, SESSYNC_BEGIN_LOCK, -1, on_begin, &f,
                                          NULL, NULL));
  wait_until(&f.done, 1);
  CHECK(f.status == SESSYNC_STATUS_OK && !sessync_session_is_new(f.session));
  sessync_session_free(f.session);
}

/* ---- ids ---- */

static void ids(void) {
  char id[SESSYNC_ID_MAX_LEN + 1];
  size_t len = 0;
  CHECK_OK(sessync_id_generate(id, sizeof id, &len, NULL));
  CHECK(len == 32 && strlen(id) == 32);
  CHECK_OK(sessync_id_check(id, NULL));
  char other[SESSYNC_ID_MAX_LEN + 1];
  CHECK_OK(sessync_id_generate(other, sizeof other, NULL, NULL));
  CHECK(strcmp(id, other) != 0);
  /* Too small a buffer says how much is needed and writes nothing. */
  char small[8] = "unset";
  len = 0;
  CHECK_STATUS(sessync_id_generate(small, sizeof small, &len, NULL),
               SESSYNC_STATUS_INSUFFICIENT_SIZE);
  CHECK(len == 32 && strcmp(small, "unset") == 0);
  CHECK_STATUS(sessync_id_generate(NULL, 64, &len, NULL), SESSYNC_STATUS_INSUFFICIENT_SIZE);

  sessync_error err;
  CHECK_STATUS(sessync_id_check("short", &err), SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "16 to 48") != NULL);
  CHECK_STATUS(sessync_id_check("has a space in it, sadly", &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_id_check("0123456789abcdef0123456789abcdef0123456789abcdef0", &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_id_check("\xff\xfe invalid utf8 here!!", &err),
               SESSYNC_STATUS_INVALID_UTF8);
  CHECK_STATUS(sessync_id_check(NULL, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_OK(sessync_id_check("0123456789abcdef", NULL));
}

/* ---- opaque bytes ---- */

static void bytes_values(void) {
  const char *id = "bindings-bytes-session-001";
  const uint8_t blob[] = {0x00, 0xff, 0x10, 's', ':', 0x80, 0x00};
  const char *php = "count|i:3;name|s:3:\"ann\";";
  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin_id(g_store, id, 0, -1, &s, NULL));
  CHECK_OK(sessync_session_set_bytes(s, "blob", blob, sizeof blob, NULL));
  CHECK_OK(sessync_session_set_bytes(s, "php", (const uint8_t *)php, strlen(php), NULL));
  CHECK_OK(sessync_session_set_bytes(s, "empty", NULL, 0, NULL));
  CHECK_OK(sessync_session_set(s, "num", BYTES("5"), NULL));
  CHECK_OK(sessync_session_commit(s, NULL, NULL));

  /* UTF-8 stays a readable JSON string; other bytes are base64 in an object. */
  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_fetch(g_store, id, &b, NULL, NULL));
  CHECK(strstr((const char *)b.data, "\"php\":\"count|i:3;name|s:3:\\\"ann\\\";\"") != NULL);
  CHECK(strstr((const char *)b.data, "\"blob\":{\"$base64\":\"AP8Qczq" "AAA==\"}") != NULL);
  sessync_buf_free(&b);

  CHECK_OK(sessync_session_begin_id(g_store, id, 0, -1, &s, NULL));
  CHECK_OK(sessync_session_get_bytes(s, "blob", &b, NULL));
  CHECK(b.len == sizeof blob && memcmp(b.data, blob, sizeof blob) == 0);
  sessync_buf_free(&b);
  CHECK_OK(sessync_session_get_bytes(s, "php", &b, NULL));
  CHECK(b.len == strlen(php) && memcmp(b.data, php, b.len) == 0);
  sessync_buf_free(&b);
  CHECK_OK(sessync_session_get_bytes(s, "empty", &b, NULL));
  CHECK(b.data == NULL && b.len == 0);
  sessync_error err;
  CHECK_STATUS(sessync_session_get_bytes(s, "num", &b, &err), SESSYNC_STATUS_INVALID_JSON);
  CHECK(strstr(err.message, "num") != NULL);
  CHECK_STATUS(sessync_session_get_bytes(s, "absent", &b, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK(b.data == NULL);
  CHECK_STATUS(sessync_session_set_bytes(s, "x", NULL, 3, NULL), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_set_bytes(s, "\xff", blob, 1, NULL), SESSYNC_STATUS_INVALID_UTF8);
  CHECK_STATUS(sessync_session_get_bytes(s, "blob", NULL, NULL), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(!sessync_session_changed(s)); /* the refused calls changed nothing */
  sessync_session_free(s);
}

/* ---- stats sized by the caller ---- */

static void stats_sizes(void) {
  sessync_stats full;
  CHECK_OK(sessync_store_stats(g_store, &full, sizeof full, NULL));
  CHECK(full.sessions >= 4);

  /* An older, shorter struct: only its fields are written. */
  uint64_t two[3] = {7, 7, 7};
  CHECK_OK(sessync_store_stats(g_store, (sessync_stats *)(void *)two, 2 * sizeof(uint64_t), NULL));
  CHECK(two[0] == full.sessions && two[2] == 7);

  /* A newer, longer struct: the fields this library does not know are zeroed. */
  uint64_t longer[sizeof(sessync_stats) / 8 + 2];
  memset(longer, 0xab, sizeof longer);
  CHECK_OK(sessync_store_stats(g_store, (sessync_stats *)(void *)longer, sizeof longer, NULL));
  CHECK(longer[0] == full.sessions);
  CHECK(longer[sizeof(sessync_stats) / 8] == 0 && longer[sizeof(sessync_stats) / 8 + 1] == 0);

  sessync_error err;
  CHECK_STATUS(sessync_store_stats(g_store, &full, 4, &err), SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "stats_size") != NULL);
}

/* ---- draining before exit ---- */

static void drain_before_exit(void) {
  const char *id = "bindings-drain-session-01";
  make_session(id);
  uint64_t holder = 0;
  CHECK_OK(sessync_store_lock(g_store, id, 30000, 0, &holder, NULL));
  /* Two waiters that would wait a minute, and a commit. */
  static struct waiter w[2];
  for (int i = 0; i < 2; i++) {
    w[i].index = 100 + i;
    w[i].status = SESSYNC_STATUS_OK;
    CHECK_OK(sessync_store_lock_async(g_store, id, 30000, 60000, on_lock, &w[i], NULL, NULL));
  }
  size_t pending = 99;
  /* Without cancelling, they are still waiting when the wait runs out. */
  CHECK_OK(sessync_async_drain(false, 0, &pending, NULL));
  CHECK(pending == 2);
  int before = finished;
  CHECK_OK(sessync_async_drain(true, 60000, &pending, NULL));
  /* Both callbacks have returned by the time it does. */
  CHECK(pending == 0);
  CHECK(finished == before + 2);
  CHECK(w[0].status == SESSYNC_STATUS_CANCELLED && w[1].status == SESSYNC_STATUS_CANCELLED);
  CHECK_OK(sessync_async_drain(true, 0, NULL, NULL));
  CHECK_OK(sessync_store_unlock(g_store, id, holder, NULL));
}

/* ---- per-session TTL, listing and clearing ---- */

static uint64_t ttl_of(sessync_store *store, const char *id) {
  sessync_record *r = NULL;
  CHECK_OK(sessync_store_get(store, id, &r, NULL));
  uint64_t t = sessync_record_ttl(r);
  sessync_record_free(r);
  return t;
}

static void ttl_list_and_clear(void) {
  sessync_store *st = NULL;
  CHECK_OK(sessync_store_open("mem://?ttl=30m", NULL, &st, NULL));
  const char *ids[5] = {"bindings-list-session-0001", "bindings-list-session-0002",
                        "bindings-list-session-0003", "bindings-list-session-0004",
                        "bindings-list-session-0005"};

  /* A TTL set in a request is applied with its changes. */
  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin_id(st, ids[0], 0, -1, &s, NULL));
  CHECK_OK(sessync_session_set_ttl(s, 120000, NULL));
  CHECK(sessync_session_changed(s));
  CHECK_OK(sessync_session_set(s, "a", BYTES("1"), NULL));
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  CHECK(ttl_of(st, ids[0]) == 120000);
  sessync_record *r = NULL;
  CHECK_OK(sessync_store_get(st, ids[0], &r, NULL));
  uint64_t expires = sessync_record_expires_at(r);
  uint64_t created = sessync_record_created(r);
  sessync_record_free(r);
  CHECK(expires - created <= 120000 + 10 && expires - created >= 120000 - 10);
  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_fetch_record(st, ids[0], &b, NULL));
  CHECK(strstr((const char *)b.data, "\"ttl\":120000") != NULL);
  sessync_buf_free(&b);

  /* Without other changes, the commit touches with the new TTL; a write keeps it. */
  CHECK_OK(sessync_session_begin_id(st, ids[0], SESSYNC_BEGIN_LOCK, 0, &s, NULL));
  CHECK_OK(sessync_session_set_ttl(s, 600000, NULL));
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  CHECK(ttl_of(st, ids[0]) == 600000);
  CHECK_OK(sessync_store_patch(st, ids[0], BYTES("{\"b\":2}"), 0, 0, NULL, NULL));
  CHECK(ttl_of(st, ids[0]) == 600000);

  /* The store call. */
  for (int i = 1; i < 5; i++) {
    make_session_in(st, ids[i]);
  }
  CHECK(ttl_of(st, ids[1]) == 0);
  bool written = false;
  CHECK_OK(sessync_store_touch_ttl(st, ids[1], 5000, &written, NULL));
  CHECK(written && ttl_of(st, ids[1]) == 5000);

  /* Bad TTLs change nothing. */
  sessync_error err;
  CHECK_STATUS(sessync_store_touch_ttl(st, ids[1], 0, NULL, &err), SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_store_touch_ttl(st, ids[1], 366ULL * 24 * 3600 * 1000, NULL, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(ttl_of(st, ids[1]) == 5000);
  CHECK_STATUS(sessync_store_touch_ttl(st, "bindings-never-there-0", 5000, NULL, &err),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK_OK(sessync_session_begin_id(st, ids[2], 0, -1, &s, NULL));
  CHECK_STATUS(sessync_session_set_ttl(s, 0, &err), SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "TTL") != NULL || strstr(err.message, "ttl") != NULL);
  CHECK(!sessync_session_changed(s));
  sessync_session_free(s);
  CHECK_STATUS(sessync_session_set_ttl(NULL, 1000, &err), SESSYNC_STATUS_NULL_ARGUMENT);

  /* Listing in pages of two finds each of the five once. */
  int seen[5] = {0};
  uint64_t cursor = 0;
  int pages = 0;
  do {
    uint64_t next = 0;
    CHECK_OK(sessync_store_list(st, cursor, 2, &b, &next, NULL));
    for (int i = 0; i < 5; i++) {
      if (b.data && strstr((const char *)b.data, ids[i])) {
        seen[i]++;
      }
    }
    sessync_buf_free(&b);
    cursor = next;
    pages++;
  } while (cursor != 0 && pages < 1000);
  for (int i = 0; i < 5; i++) {
    CHECK(seen[i] == 1);
  }
  uint64_t next = 7;
  CHECK_STATUS(sessync_store_list(st, 0, 0, &b, &next, &err), SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_store_list(st, 0, 10, NULL, &next, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_list(st, 0, 10, &b, NULL, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_list(NULL, 0, 10, &b, &next, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(next == 7 && b.data == NULL);

  /* Clearing destroys them all; a late write is refused. */
  size_t n = 0;
  CHECK_OK(sessync_store_clear(st, &n, NULL));
  CHECK(n == 5);
  CHECK_OK(sessync_store_list(st, 0, 100, &b, &next, NULL));
  CHECK(buf_is(&b, "[]") && next == 0);
  sessync_buf_free(&b);
  CHECK_STATUS(sessync_store_write(st, ids[3], BYTES("{}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
  CHECK_OK(sessync_store_clear(st, &n, NULL));
  CHECK(n == 0);
  CHECK_OK(sessync_store_clear(st, NULL, NULL));
  CHECK_STATUS(sessync_store_clear(NULL, &n, NULL), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(sessync_record_ttl(NULL) == 0);
  sessync_store_free(st);
}

/* ---- one store per process and URL, and fork ---- */

static void shared_stores_and_fork(void) {
  const char *url = "mem://?ttl=10m";
  const char *id = "bindings-shared-session-01";
  sessync_store *a = NULL, *b = NULL, *c = NULL;
  CHECK_OK(sessync_store_open_shared(url, NULL, &a, NULL));
  CHECK_OK(sessync_store_write(a, id, BYTES("{\"from\":\"a\"}"), NULL, 0, 0, NULL, NULL));
  sessync_store_free(a);
  /* The next request's handle sees what the last one stored. */
  CHECK_OK(sessync_store_open_shared(url, NULL, &b, NULL));
  CHECK(has_data(b, id, "{\"from\":\"a\"}", 1));
  /* Other options make another store. */
  sessync_options *o = NULL;
  CHECK_OK(sessync_options_new(&o, NULL));
  CHECK_OK(sessync_options_set(o, "lock_wait", "1s", NULL));
  CHECK_OK(sessync_store_open_shared(url, o, &c, NULL));
  sessync_options_free(o);
  sessync_buf buf = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(c, id, &buf, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  sessync_store_free(c);

  /* A forked child gets a store of its own, and the parent keeps its. */
  fflush(stdout);
  pid_t child = fork();
  CHECK(child >= 0);
  if (child == 0) {
    sessync_store *k = NULL;
    if (sessync_store_open_shared(url, NULL, &k, NULL) != SESSYNC_STATUS_OK) _exit(2);
    sessync_buf kb = {NULL, 0};
    if (sessync_store_fetch(k, id, &kb, NULL, NULL) != SESSYNC_STATUS_NOT_FOUND) _exit(3);
    if (sessync_store_write(k, id, BYTES("{\"from\":\"child\"}"), NULL, 0, 0, NULL, NULL))
      _exit(4);
    /* The parent's async runtime stayed behind: the child's calls get one of their own. */
    struct flow cf = {0};
    if (sessync_session_begin_id_async(k, id, SESSYNC_BEGIN_LOCK, 1000, on_begin, &cf, NULL,
                                       NULL))
      _exit(6);
    wait_until(&cf.done, 1);
    if (cf.status != SESSYNC_STATUS_OK || sessync_session_is_new(cf.session)) _exit(7);
    if (sessync_session_commit(cf.session, NULL, NULL)) _exit(8);
    size_t pending = 1;
    if (sessync_async_drain(false, 10000, &pending, NULL) || pending != 0) _exit(9);
    sessync_store_free(k);
    /* Leave by exec: under valgrind a child that exits is checked for leaks, and the
     * parent's threads, which did not come along, own memory it cannot reach. */
    execl("/bin/sh", "sh", "-c", "exit 0", (char *)NULL);
    _exit(5);
  }
  int st = 0;
  CHECK(waitpid(child, &st, 0) == child);
  CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  CHECK(has_data(b, id, "{\"from\":\"a\"}", 1));
  sessync_store_free(b);

  sessync_error err;
  CHECK_STATUS(sessync_store_open_shared(NULL, NULL, &a, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_open_shared(url, NULL, NULL, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  a = NULL;
  CHECK_STATUS(sessync_store_open_shared("nope://x", NULL, &a, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(a == NULL);
}

/* ---- NULL and garbage for every new function ---- */

static void bad_arguments(void) {
  sessync_error err;
  uint64_t ticket = 99;
  int dummy = 0;
  CHECK_STATUS(sessync_store_lock_async(NULL, LOCK_ID, 1000, 0, on_lock, &dummy, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_lock_async(g_store, NULL, 1000, 0, on_lock, &dummy, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_lock_async(g_store, LOCK_ID, 1000, 0, NULL, &dummy, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(strstr(err.message, "callback") != NULL);
  CHECK_STATUS(sessync_store_lock_async(g_store, "no", 1000, 0, on_lock, &dummy, &ticket, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_store_lock_async(g_store, LOCK_ID, 0, 0, on_lock, &dummy, &ticket, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "lease") != NULL);
  CHECK_STATUS(sessync_store_lock_async(g_store, LOCK_ID, 1000, UINT64_MAX, on_lock, &dummy,
                                        &ticket, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(ticket == 99); /* no ticket, and no callback will come */

  struct flow f = {0};
  CHECK_STATUS(sessync_session_begin_async(g_store, NULL, 0, 8, -1, on_begin, &f, &ticket, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "flags") != NULL);
  CHECK_STATUS(sessync_session_begin_async(g_store, NULL, 5, 0, -1, on_begin, &f, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_async(g_store, NULL, 0, 0, -1, NULL, &f, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_async(g_store, NULL, 0, SESSYNC_BEGIN_LOCK, 4000000000LL,
                                           on_begin, &f, &ticket, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_id_async(g_store, "bad id!", 0, -1, on_begin, &f, &ticket,
                                              &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_id_async(NULL, LOCK_ID, 0, -1, on_begin, &f, &ticket, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_commit_async(NULL, on_commit, &f, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK(ticket == 99 && f.done == 0);

  /* A commit without a callback still consumes (and aborts) its session. */
  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin_id(g_store, LOCK_ID, SESSYNC_BEGIN_LOCK, 0, &s, NULL));
  CHECK_STATUS(sessync_session_commit_async(s, NULL, NULL, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  uint64_t t = 0;
  CHECK_OK(sessync_store_lock(g_store, LOCK_ID, 1000, 0, &t, NULL)); /* it was released */
  CHECK_OK(sessync_store_unlock(g_store, LOCK_ID, t, NULL));

  bool cancelled = true;
  CHECK_OK(sessync_ticket_cancel(0, &cancelled, NULL));
  CHECK(!cancelled);
  CHECK_OK(sessync_ticket_cancel(UINT64_MAX, NULL, NULL));

  CHECK_STATUS(sessync_session_begin_id(g_store, NULL, 0, -1, &s, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_id(g_store, LOCK_ID, 2, -1, &s, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK_STATUS(sessync_session_begin_id(g_store, LOCK_ID, 0, -1, NULL, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_session_begin(g_store, NULL, 0, SESSYNC_BEGIN_LOCK, 3600001, &s, &err),
               SESSYNC_STATUS_INVALID_ARGUMENT);
  CHECK(strstr(err.message, "wait") != NULL);

  CHECK(sessync_session_version(NULL) == 0);
  CHECK(sessync_session_expires_at(NULL) == 0);
  CHECK(sessync_session_token(NULL) == 0);
  CHECK(!sessync_session_changed(NULL));
  CHECK_STATUS(sessync_session_set_bytes(NULL, "k", (const uint8_t *)"v", 1, &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_session_get_bytes(NULL, "k", &b, &err), SESSYNC_STATUS_NULL_ARGUMENT);
  CHECK_STATUS(sessync_store_stats(g_store, NULL, sizeof(sessync_stats), &err),
               SESSYNC_STATUS_NULL_ARGUMENT);
}

int main(void) {
  CHECK_OK(sessync_store_open("mem://", NULL, &g_store, NULL));
  errors_survive_a_thread_hop();
  async_lock_waiters_in_order();
  begin_and_commit_async();
  begin_by_id();
  ids();
  bytes_values();
  stats_sizes();
  ttl_list_and_clear();
  shared_stores_and_fork();
  bad_arguments();
  drain_before_exit();
  sessync_store_free(g_store);
  printf("for_bindings: ok\n");
  return 0;
}
