/*
 * store_basic.c: the direct store operations of the C ABI on mem://, one after another:
 * write/fetch, compare-and-swap, merge patch, increments, locks and fencing tokens, touch,
 * destroy and its tombstone, rotation, owners, stats. Frees everything it owns.
 */
#include <inttypes.h>

#include "check.h"

/* Ids from outside must be 16 to 48 characters of A-Z a-z 0-9 - _. */
#define ID_A "basic-session-aaaa-0001"
#define ID_B "basic-session-bbbb-0002"
#define ID_P "basic-session-patch-003"
#define ID_I "basic-session-incr-0004"
#define ID_R "basic-session-rotate-05"
#define ID_O1 "basic-owner-session-01"
#define ID_O2 "basic-owner-session-02"
#define ID_O3 "basic-owner-session-03"

static void write_and_fetch(sessync_store *store) {
  uint64_t v = 0;
  CHECK_OK(sessync_store_write(store, ID_A, BYTES("{\"user\":\"ann\",\"cart\":[1,2]}"), NULL, 0,
                               0, &v,
                               NULL));
  CHECK(v == 1);

  /* The stored text is compact JSON with the keys sorted, NUL-terminated. */
  sessync_buf b = {NULL, 0};
  uint64_t fv = 0;
  CHECK_OK(sessync_store_fetch(store, ID_A, &b, &fv, NULL));
  CHECK(buf_is(&b, "{\"cart\":[1,2],\"user\":\"ann\"}"));
  CHECK(strcmp((const char *)b.data, "{\"cart\":[1,2],\"user\":\"ann\"}") == 0);
  CHECK(fv == 1);
  sessync_buf_free(&b);
  CHECK(b.data == NULL && b.len == 0);

  /* Each write adds one to the version; version_out and version may be NULL. */
  CHECK_OK(sessync_store_write(store, ID_A, BYTES("{\"n\":1}"), NULL, 0, 0, NULL, NULL));
  CHECK(has_data(store, ID_A, "{\"n\":1}", 2));
  CHECK_OK(sessync_store_fetch(store, ID_A, &b, NULL, NULL));
  CHECK(buf_is(&b, "{\"n\":1}"));
  sessync_buf_free(&b);

  /* The whole record. */
  CHECK_OK(sessync_store_fetch_record(store, ID_A, &b, NULL));
  CHECK(strstr((const char *)b.data, "\"id\":\"" ID_A "\"") != NULL);
  CHECK(strstr((const char *)b.data, "\"data\":{\"n\":1}") != NULL);
  CHECK(strstr((const char *)b.data, "\"version\":2") != NULL);
  CHECK(strstr((const char *)b.data, "\"owner\":null") != NULL);
  sessync_buf_free(&b);

  /* Unknown ids are not found, and fetching them creates nothing. */
  CHECK_STATUS(sessync_store_fetch(store, "basic-never-written-01", &b, NULL, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(b.data == NULL);
}

static void compare_and_swap(sessync_store *store) {
  uint64_t v = 0;
  uint64_t expected = 2;
  CHECK_OK(sessync_store_write(store, ID_A, BYTES("{\"n\":2}"), &expected, 0, 0, &v, NULL));
  CHECK(v == 3);

  /* Another writer still expecting version 2 loses, and changes nothing. */
  v = 777;
  CHECK_STATUS(sessync_store_write(store, ID_A, BYTES("{\"n\":99}"), &expected, 0, 0, &v, NULL),
               SESSYNC_STATUS_CONFLICT);
  CHECK_ERROR_HAS("expected version 2");
  CHECK(v == 777);
  CHECK(has_data(store, ID_A, "{\"n\":2}", 3));

  /* Expected version 0: "create only". */
  expected = 0;
  CHECK_STATUS(sessync_store_write(store, ID_A, BYTES("{}"), &expected, 0, 0, NULL, NULL),
               SESSYNC_STATUS_CONFLICT);
  CHECK_OK(sessync_store_write(store, ID_B, BYTES("{\"b\":true}"), &expected, 0, 0, &v, NULL));
  CHECK(v == 1);
  CHECK_STATUS(sessync_store_write(store, ID_B, BYTES("{\"b\":false}"), &expected, 0, 0, NULL, NULL),
               SESSYNC_STATUS_CONFLICT);
  CHECK(has_data(store, ID_B, "{\"b\":true}", 1));
}

static void merge_patch(sessync_store *store) {
  uint64_t v = 0;
  CHECK_OK(sessync_store_write(store, ID_P, BYTES("{\"a\":1,\"b\":{\"c\":1},\"keep\":true}"),
                               NULL, 0, 0, &v,
                               NULL));
  CHECK(v == 1);
  /* null deletes a key, objects merge, other values replace. */
  CHECK_OK(sessync_store_patch(store, ID_P, BYTES("{\"a\":null,\"b\":{\"d\":2},\"n\":[1]}"), 0,
                               0, &v,
                               NULL));
  CHECK(v == 2);
  CHECK(has_data(store, ID_P, "{\"b\":{\"c\":1,\"d\":2},\"keep\":true,\"n\":[1]}", 2));
  CHECK_OK(sessync_store_patch(store, ID_P, BYTES("{\"b\":{\"c\":null}}"), 0, 0, NULL, NULL));
  CHECK(has_data(store, ID_P, "{\"b\":{\"d\":2},\"keep\":true,\"n\":[1]}", 3));

  /* An absent session needs SESSYNC_WRITE_CREATE. */
  CHECK_STATUS(sessync_store_patch(store, "basic-patch-created-1", BYTES("{\"x\":1}"), 0, 0, &v, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(v == 2);
  CHECK_OK(sessync_store_patch(store, "basic-patch-created-1", BYTES("{\"x\":1}"), 0,
                               SESSYNC_WRITE_CREATE, &v,
                               NULL));
  CHECK(v == 1);
  CHECK(has_data(store, "basic-patch-created-1", "{\"x\":1}", 1));
}

static void increments(sessync_store *store) {
  int64_t n = 0;
  CHECK_OK(sessync_store_write(store, ID_I, BYTES("{\"s\":\"text\"}"), NULL, 0, 0, NULL, NULL));
  CHECK_OK(sessync_store_incr(store, ID_I, "hits", 1, 0, 0, &n, NULL));
  CHECK(n == 1);
  CHECK_OK(sessync_store_incr(store, ID_I, "hits", 41, 0, 0, &n, NULL));
  CHECK(n == 42);
  CHECK_OK(sessync_store_incr(store, ID_I, "hits", -50, 0, 0, &n, NULL));
  CHECK(n == -8);
  CHECK_OK(sessync_store_incr(store, ID_I, "hits", 0, 0, 0, NULL, NULL));
  CHECK(has_data(store, ID_I, "{\"hits\":-8,\"s\":\"text\"}", 5));

  CHECK_STATUS(sessync_store_incr(store, "basic-incr-created-01", "n", 1, 0, 0, &n, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(n == -8);
  CHECK_OK(sessync_store_incr(store, "basic-incr-created-01", "n", 5, 0, SESSYNC_WRITE_CREATE,
                              &n,
                              NULL));
  CHECK(n == 5);
  CHECK(has_data(store, "basic-incr-created-01", "{\"n\":5}", 1));
}

static void locks(sessync_store *store) {
  uint64_t t1 = 0, t2 = 0, t3 = 0, other = 0;
  CHECK_OK(sessync_store_write(store, ID_A, BYTES("{\"n\":0}"), NULL, 0, 0, NULL, NULL));
  CHECK(has_data(store, ID_A, "{\"n\":0}", 4));

  CHECK_OK(sessync_store_lock(store, ID_A, 10000, 0, &t1, NULL));
  CHECK(t1 != 0);

  /* A second lock with no wait times out; the token output is untouched. */
  other = 12345;
  CHECK_STATUS(sessync_store_lock(store, ID_A, 10000, 0, &other, NULL), SESSYNC_STATUS_LOCK_TIMEOUT);
  CHECK(other == 12345);

  /* Writes without the token are refused while it is held. */
  CHECK_STATUS(sessync_store_write(store, ID_A, BYTES("{\"n\":9}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_LOCKED);
  CHECK_STATUS(sessync_store_patch(store, ID_A, BYTES("{\"n\":9}"), 0, 0, NULL, NULL),
               SESSYNC_STATUS_LOCKED);
  int64_t n = 0;
  CHECK_OK(sessync_store_incr(store, ID_A, "n", 1, t1, 0, &n, NULL));
  CHECK(n == 1);

  /* Unlocked: the token is stale from now on. */
  CHECK_OK(sessync_store_unlock(store, ID_A, t1, NULL));
  CHECK_STATUS(sessync_store_unlock(store, ID_A, t1, NULL), SESSYNC_STATUS_STALE_TOKEN);
  CHECK_STATUS(sessync_store_incr(store, ID_A, "n", 1, t1, 0, &n, NULL), SESSYNC_STATUS_STALE_TOKEN);
  CHECK(n == 1);

  /* Each token is greater than the ones before; an old one stays refused. */
  CHECK_OK(sessync_store_lock(store, ID_A, 10000, 0, &t2, NULL));
  CHECK(t2 > t1);
  CHECK_STATUS(sessync_store_write(store, ID_A, BYTES("{\"n\":5}"), NULL, t1, 0, NULL, NULL),
               SESSYNC_STATUS_STALE_TOKEN);
  /* A token never issued is stale too. */
  CHECK_STATUS(sessync_store_unlock(store, ID_A, t2 + 1000, NULL), SESSYNC_STATUS_STALE_TOKEN);

  /* Write and release in one step. */
  uint64_t v = 0;
  CHECK_OK(sessync_store_write(store, ID_A, BYTES("{\"n\":5}"), NULL, t2, SESSYNC_WRITE_RELEASE,
                               &v,
                               NULL));
  CHECK(v == 6);
  CHECK_STATUS(sessync_store_unlock(store, ID_A, t2, NULL), SESSYNC_STATUS_STALE_TOKEN);
  CHECK_OK(sessync_store_lock(store, ID_A, 10000, 0, &t3, NULL));
  CHECK(t3 > t2);
  CHECK_OK(sessync_store_unlock(store, ID_A, t3, NULL));
  CHECK(has_data(store, ID_A, "{\"n\":5}", 6));

  /* Locking a session that does not exist is not found. */
  other = 12345;
  CHECK_STATUS(sessync_store_lock(store, "basic-no-such-session", 1000, 0, &other, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(other == 12345);
}

static void touch(sessync_store *store) {
  /* Just written: the last access is within the touch interval (10% of 30 min). */
  bool written = true;
  CHECK_OK(sessync_store_touch(store, ID_A, &written, NULL));
  CHECK(!written);
  CHECK_OK(sessync_store_touch(store, ID_A, NULL, NULL));
  /* A touch never changes the data or the version. */
  CHECK(has_data(store, ID_A, "{\"n\":5}", 6));
  written = true;
  CHECK_STATUS(sessync_store_touch(store, "basic-no-such-session", &written, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(written);
}

static void destroy(sessync_store *store) {
  bool existed = false;
  CHECK_OK(sessync_store_destroy(store, ID_A, &existed, NULL));
  CHECK(existed);

  sessync_buf b = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(store, ID_A, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  /* The tombstone refuses every late write. */
  CHECK_STATUS(sessync_store_write(store, ID_A, BYTES("{\"user\":1}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
  CHECK_STATUS(sessync_store_patch(store, ID_A, BYTES("{\"user\":1}"), 0, SESSYNC_WRITE_CREATE,
                                   NULL,
                                   NULL),
               SESSYNC_STATUS_DESTROYED);
  CHECK_STATUS(sessync_store_incr(store, ID_A, "n", 1, 0, SESSYNC_WRITE_CREATE, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
  uint64_t t = 0;
  CHECK_STATUS(sessync_store_lock(store, ID_A, 1000, 0, &t, NULL), SESSYNC_STATUS_DESTROYED);
  CHECK_STATUS(sessync_store_touch(store, ID_A, NULL, NULL), SESSYNC_STATUS_DESTROYED);
  CHECK_STATUS(sessync_store_fetch(store, ID_A, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK(b.data == NULL);

  existed = true;
  CHECK_OK(sessync_store_destroy(store, ID_A, &existed, NULL));
  CHECK(!existed);
  /* Destroying an id that never held a session also leaves a tombstone. */
  CHECK_OK(sessync_store_destroy(store, "basic-never-written-02", NULL, NULL));
  CHECK_STATUS(sessync_store_write(store, "basic-never-written-02", BYTES("{}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
}

static void rotate(sessync_store *store) {
  CHECK_OK(sessync_store_write(store, ID_R, BYTES("{\"cart\":[1]}"), NULL, 0, 0, NULL, NULL));

  char id[SESSYNC_ID_MAX_LEN + 1];
  size_t len = 0;
  CHECK_OK(sessync_store_rotate(store, ID_R, 0, id, sizeof id, &len, NULL));
  CHECK(len >= 16 && len <= SESSYNC_ID_MAX_LEN);
  CHECK(strlen(id) == len);
  CHECK(strcmp(id, ID_R) != 0);

  /* The new id carries the data at the same version. */
  CHECK(has_data(store, id, "{\"cart\":[1]}", 1));
  /* The old id is not answered with the new session (whoever knew it must not get the
   * new one: session fixation), nor does an error name the new id... */
  sessync_buf old = {NULL, 0};
  CHECK_STATUS(sessync_store_fetch(store, ID_R, &old, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_STATUS(sessync_store_fetch_record(store, ID_R, &old, NULL), SESSYNC_STATUS_NOT_FOUND);
  sessync_record *rec = NULL;
  CHECK_STATUS(sessync_store_get(store, ID_R, &rec, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK(old.data == NULL && rec == NULL);
  /* ... and it refuses writes. */
  sessync_error err;
  CHECK_STATUS(sessync_store_write(store, ID_R, BYTES("{}"), NULL, 0, 0, NULL, &err),
               SESSYNC_STATUS_ROTATED);
  CHECK(strstr(err.message, id) == NULL);
  CHECK_STATUS(sessync_store_incr(store, ID_R, "n", 1, 0, 0, NULL, NULL), SESSYNC_STATUS_ROTATED);
  CHECK(strstr(sessync_last_error_message(), id) == NULL);

  /* The new id takes writes. */
  int64_t n = 0;
  CHECK_OK(sessync_store_incr(store, id, "n", 1, 0, 0, &n, NULL));
  CHECK(n == 1);
  CHECK(has_data(store, id, "{\"cart\":[1],\"n\":1}", 2));

  /* Rotating what does not exist fails and writes nothing. */
  char id2[SESSYNC_ID_MAX_LEN + 1] = "untouched";
  size_t len2 = 99;
  CHECK_STATUS(sessync_store_rotate(store, "basic-no-such-session", 0, id2, sizeof id2, &len2, NULL),
               SESSYNC_STATUS_NOT_FOUND);
  CHECK(strcmp(id2, "untouched") == 0);
}

static void owners(sessync_store *store) {
  uint64_t v = 0;
  CHECK_OK(sessync_store_write(store, ID_O1, BYTES("{}"), NULL, 0, 0, NULL, NULL));
  CHECK_OK(sessync_store_write(store, ID_O2, BYTES("{}"), NULL, 0, 0, NULL, NULL));
  CHECK_OK(sessync_store_write(store, ID_O3, BYTES("{}"), NULL, 0, 0, NULL, NULL));
  CHECK_OK(sessync_store_set_owner(store, ID_O1, "u1", 0, &v, NULL));
  CHECK(v == 2);
  CHECK_OK(sessync_store_set_owner(store, ID_O2, "u1", 0, NULL, NULL));
  CHECK_OK(sessync_store_set_owner(store, ID_O3, "u2", 0, &v, NULL));
  CHECK(v == 2);

  sessync_buf b = {NULL, 0};
  CHECK_OK(sessync_store_sessions_of(store, "u1", &b, NULL));
  CHECK(buf_is(&b, "[\"" ID_O1 "\",\"" ID_O2 "\"]"));
  sessync_buf_free(&b);

  /* Clearing the owner (NULL) takes the session out of the list. */
  CHECK_OK(sessync_store_set_owner(store, ID_O2, NULL, 0, &v, NULL));
  CHECK(v == 3);
  CHECK_OK(sessync_store_sessions_of(store, "u1", &b, NULL));
  CHECK(buf_is(&b, "[\"" ID_O1 "\"]"));
  sessync_buf_free(&b);
  CHECK_OK(sessync_store_set_owner(store, ID_O2, "u1", 0, NULL, NULL));

  CHECK_OK(sessync_store_fetch_record(store, ID_O3, &b, NULL));
  CHECK(strstr((const char *)b.data, "\"owner\":\"u2\"") != NULL);
  sessync_buf_free(&b);

  /* Log out everywhere. */
  size_t count = 0;
  CHECK_OK(sessync_store_destroy_all(store, "u1", &count, NULL));
  CHECK(count == 2);
  CHECK_OK(sessync_store_sessions_of(store, "u1", &b, NULL));
  CHECK(buf_is(&b, "[]"));
  sessync_buf_free(&b);
  CHECK_STATUS(sessync_store_fetch(store, ID_O1, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_STATUS(sessync_store_fetch(store, ID_O2, &b, NULL, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK_STATUS(sessync_store_write(store, ID_O1, BYTES("{}"), NULL, 0, 0, NULL, NULL),
               SESSYNC_STATUS_DESTROYED);
  CHECK(has_data(store, ID_O3, "{}", 2));

  CHECK_OK(sessync_store_destroy_all(store, "nobody", &count, NULL));
  CHECK(count == 0);
  CHECK_OK(sessync_store_destroy_all(store, "nobody", NULL, NULL));
  CHECK_OK(sessync_store_sessions_of(store, "nobody", &b, NULL));
  CHECK(buf_is(&b, "[]"));
  sessync_buf_free(&b);
}

static void stats(sessync_store *store) {
  sessync_stats s;
  memset(&s, 0xAB, sizeof s);
  CHECK_OK(sessync_store_stats(store, &s, sizeof s, NULL));
  printf("stats: sessions=%" PRIu64 " tombstones=%" PRIu64 " aliases=%" PRIu64
         " operations=%" PRIu64 " lock_waits=%" PRIu64 " lock_timeouts=%" PRIu64
         " expirations=%" PRIu64 " evictions=%" PRIu64 "\n",
         s.sessions, s.tombstones, s.aliases, s.operations, s.lock_waits, s.lock_timeouts,
         s.expirations, s.evictions);
  /* Live: B, the patch-created and incr-created ones, P, I, the rotated-to id, O3. */
  CHECK(s.sessions == 7);
  /* Destroyed: A, the never-written id, O1, O2; rotated away: R. */
  CHECK(s.tombstones == 5);
  CHECK(s.aliases == 1);
  CHECK(s.operations > 0);
  /* Only the lock with wait 0 found the lock taken, and gave up. */
  CHECK(s.lock_waits == 1);
  CHECK(s.lock_timeouts == 1);
  CHECK(s.expirations == 0);
  CHECK(s.evictions == 0);
}

/* sessync_store_get: a zero-copy record, readable after the session changes. */
static void zero_copy_record(sessync_store *store) {
  const char *id = "basic-zero-copy-record-01";
  const char json[] = "{\"a\":1,\"b\":\"two\"}";
  CHECK_OK(sessync_store_write(store, id, (const uint8_t *)json, sizeof json - 1, NULL, 0, 0,
                               NULL,
                               NULL));
  sessync_record *rec = NULL;
  CHECK_OK(sessync_store_get(store, id, &rec, NULL));
  size_t len = 0;
  const char *text = sessync_record_json(rec, &len);
  CHECK(len == strlen(json) && strcmp(text, json) == 0);
  CHECK(strcmp(sessync_record_id(rec), id) == 0);
  CHECK(sessync_record_version(rec) == 1);
  CHECK(sessync_record_created(rec) > 0 && sessync_record_expires_at(rec) > sessync_record_created(rec));
  /* A later write makes a new snapshot; this record still reads the old one. */
  CHECK_OK(sessync_store_patch(store, id, (const uint8_t *)"{\"a\":2}", 7, 0, 0, NULL, NULL));
  CHECK(strcmp(sessync_record_json(rec, NULL), json) == 0);
  sessync_record_free(rec);
  sessync_record_free(NULL);
  sessync_record *none = NULL;
  CHECK_STATUS(sessync_store_get(store, "basic-zero-copy-absent-01", &none, NULL), SESSYNC_STATUS_NOT_FOUND);
  CHECK(none == NULL);
  CHECK(sessync_record_json(NULL, NULL) == NULL);
  CHECK(sessync_record_version(NULL) == 0);
}

int main(void) {
  sessync_store *store = NULL;
  CHECK_OK(sessync_store_open("mem://", NULL, &store, NULL));
  CHECK(store != NULL);

  write_and_fetch(store);
  compare_and_swap(store);
  merge_patch(store);
  increments(store);
  locks(store);
  touch(store);
  destroy(store);
  rotate(store);
  owners(store);
  stats(store);
  zero_copy_record(store);

  sessync_store_free(store);
  printf("store_basic: ok\n");
  return 0;
}
