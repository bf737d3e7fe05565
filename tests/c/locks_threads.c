/*
 * locks_threads.c: pthreads sharing one store handle.
 *
 * 1. Eight threads run 10,000 locked requests each on one session, each a
 *    read-modify-write of "n" (get, then set n + 1: not an increment). Without mutual
 *    exclusion some updates would be lost; the final value must be exactly 80,000.
 * 2. Unlocked requests and direct increments from several threads all count too.
 * 3. An abandoned lock: a thread takes the lock with a short lease and never unlocks. A
 *    second thread asks for the lock with a long wait and gets it when the lease ends,
 *    with a greater token; the abandoned token's writes are refused as stale. Nothing in
 *    this program sleeps: the waiter blocks inside the library, and the result does not
 *    depend on how long anything takes.
 */
#define _POSIX_C_SOURCE 200809L

#include <inttypes.h>
#include <pthread.h>

#include "check.h"

#define THREADS 8
#define ITERATIONS 10000

struct shared {
  const sessync_store *store;
  char cookie[128];
  char id[SESSYNC_ID_MAX_LEN + 1];
  int iterations;
};

/* One locked request: n = n + 1 by reading and writing back. */
static void *locked_rmw(void *arg) {
  const struct shared *sh = arg;
  char value[32];
  for (int i = 0; i < sh->iterations; i++) {
    sessync_session *s = NULL;
    CHECK_OK(sessync_session_begin(sh->store, BYTES(sh->cookie), SESSYNC_BEGIN_LOCK, -1, &s, NULL));
    CHECK(!sessync_session_is_new(s));
    sessync_buf b = {NULL, 0};
    CHECK_OK(sessync_session_get(s, "n", &b, NULL));
    char *end = NULL;
    long long n = strtoll((const char *)b.data, &end, 10);
    CHECK(end == (char *)b.data + b.len);
    sessync_buf_free(&b);
    snprintf(value, sizeof value, "%lld", n + 1);
    CHECK_OK(sessync_session_set(s, "n", BYTES(value), NULL));
    sessync_buf cookie = {NULL, 0};
    CHECK_OK(sessync_session_commit(s, &cookie, NULL));
    /* The session already exists and its id does not change: no cookie to send. */
    CHECK(cookie.data == NULL);
    sessync_buf_free(&cookie);
  }
  return NULL;
}

/* Unlocked requests that increment "hits": commit applies them as atomic increments. */
static void *unlocked_incr(void *arg) {
  const struct shared *sh = arg;
  for (int i = 0; i < sh->iterations; i++) {
    sessync_session *s = NULL;
    CHECK_OK(sessync_session_begin(sh->store, BYTES(sh->cookie), 0, -1, &s, NULL));
    CHECK_OK(sessync_session_incr(s, "hits", 1, NULL, NULL));
    CHECK_OK(sessync_session_commit(s, NULL, NULL));
    CHECK_OK(sessync_store_incr(sh->store, sh->id, "direct", 2, 0, 0, NULL, NULL));
  }
  return NULL;
}

static void run_threads(void *(*fn)(void *), struct shared *sh, int threads) {
  pthread_t th[THREADS];
  CHECK(threads <= THREADS);
  for (int i = 0; i < threads; i++) {
    CHECK(pthread_create(&th[i], NULL, fn, sh) == 0);
  }
  for (int i = 0; i < threads; i++) {
    CHECK(pthread_join(th[i], NULL) == 0);
  }
}

static void no_lost_updates(sessync_store *store) {
  struct shared sh;
  memset(&sh, 0, sizeof sh);
  sh.store = store;

  sessync_session *s = NULL;
  CHECK_OK(sessync_session_begin(store, NULL, 0, 0, -1, &s, NULL));
  CHECK_OK(sessync_session_set(s, "n", BYTES("0"), NULL));
  const char *id = sessync_session_id(s);
  CHECK(id != NULL && strlen(id) < sizeof sh.id);
  memcpy(sh.id, id, strlen(id) + 1);
  CHECK_OK(sessync_session_commit(s, NULL, NULL));
  snprintf(sh.cookie, sizeof sh.cookie, "lang=en; sync_sess=%s", sh.id);

  sh.iterations = ITERATIONS;
  run_threads(locked_rmw, &sh, THREADS);

  char expected[64];
  snprintf(expected, sizeof expected, "{\"n\":%d}", THREADS * ITERATIONS);
  CHECK(has_data(store, sh.id, expected, 1 + THREADS * ITERATIONS));

  sh.iterations = ITERATIONS / 10;
  run_threads(unlocked_incr, &sh, 4);
  snprintf(expected, sizeof expected, "{\"direct\":%d,\"hits\":%d,\"n\":%d}",
           2 * 4 * (ITERATIONS / 10), 4 * (ITERATIONS / 10), THREADS * ITERATIONS);
  CHECK(has_data(store, sh.id, expected, 1 + THREADS * ITERATIONS + 2 * 4 * (ITERATIONS / 10)));
  printf("locks_threads: %d locked read-modify-writes, no update lost\n", THREADS * ITERATIONS);
}

#define ABANDONED_ID "threads-abandoned-lock-01"
#define LEASE_MS 200

struct abandon {
  const sessync_store *store;
  uint64_t token;
};

/* Takes the lock with a short lease and returns without unlocking. */
static void *take_and_abandon(void *arg) {
  struct abandon *a = arg;
  CHECK_OK(sessync_store_lock(a->store, ABANDONED_ID, LEASE_MS, 0, &a->token, NULL));
  CHECK(a->token != 0);
  return NULL;
}

/* Waits (up to a minute) for the lock. */
static void *wait_for_lock(void *arg) {
  struct abandon *a = arg;
  CHECK_OK(sessync_store_lock(a->store, ABANDONED_ID, 60000, 60000, &a->token, NULL));
  return NULL;
}

static void abandoned_lock(sessync_store *store) {
  CHECK_OK(sessync_store_write(store, ABANDONED_ID, BYTES("{\"owner\":\"none\"}"), NULL, 0, 0,
                               NULL,
                               NULL));
  sessync_stats before;
  CHECK_OK(sessync_store_stats(store, &before, sizeof before, NULL));

  struct abandon first = {store, 0}, second = {store, 0};
  pthread_t th;
  CHECK(pthread_create(&th, NULL, take_and_abandon, &first) == 0);
  CHECK(pthread_join(th, NULL) == 0);

  /* The holder's thread is gone; its lock is not. The waiter blocks in the library
   * until the lease ends, then gets the lock. */
  CHECK(pthread_create(&th, NULL, wait_for_lock, &second) == 0);
  CHECK(pthread_join(th, NULL) == 0);
  CHECK(second.token > first.token);

  sessync_stats after;
  CHECK_OK(sessync_store_stats(store, &after, sizeof after, NULL));
  CHECK(after.lock_timeouts == before.lock_timeouts);

  /* The abandoned holder wakes up late: everything it tries is refused. */
  uint64_t v = 99;
  CHECK_STATUS(sessync_store_write(store, ABANDONED_ID, BYTES("{\"owner\":\"first\"}"), NULL,
                                   first.token, 0, &v,
                                   NULL),
               SESSYNC_STATUS_STALE_TOKEN);
  CHECK(v == 99);
  CHECK_STATUS(sessync_store_incr(store, ABANDONED_ID, "n", 1, first.token, 0, NULL, NULL),
               SESSYNC_STATUS_STALE_TOKEN);
  CHECK_STATUS(sessync_store_unlock(store, ABANDONED_ID, first.token, NULL),
               SESSYNC_STATUS_STALE_TOKEN);
  /* Without a token, writes are refused as locked: the second holder has it. */
  CHECK_STATUS(sessync_store_write(store, ABANDONED_ID, BYTES("{}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_LOCKED);
  CHECK(has_data(store, ABANDONED_ID, "{\"owner\":\"none\"}", 1));

  /* The new holder writes and releases. */
  CHECK_OK(sessync_store_write(store, ABANDONED_ID, BYTES("{\"owner\":\"second\"}"), NULL,
                               second.token, SESSYNC_WRITE_RELEASE, &v,
                               NULL));
  CHECK(v == 2);
  CHECK(has_data(store, ABANDONED_ID, "{\"owner\":\"second\"}", 2));
  uint64_t t = 0;
  CHECK_OK(sessync_store_lock(store, ABANDONED_ID, 1000, 0, &t, NULL));
  CHECK(t > second.token);
  CHECK_OK(sessync_store_unlock(store, ABANDONED_ID, t, NULL));
  printf("locks_threads: abandoned token %" PRIu64 " refused after token %" PRIu64 "\n",
         first.token, second.token);
}

int main(void) {
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", NULL, &store, NULL));

  no_lost_updates(store);
  abandoned_lock(store);

  sessync_store_free(store);
  printf("locks_threads: ok\n");
  return 0;
}
