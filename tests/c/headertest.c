/*
 * headertest.c: sessync.h stands alone and is valid C11 and C++17.
 *
 * It includes nothing but sessync.h (which must bring in what it needs) and uses a few
 * declarations of each kind: types, enum constants, macros, functions. tests/c_abi.rs
 * compiles it with the C compiler (-std=c11) and again with the C++ compiler
 * (-std=c++17 -x c++), both with -Wall -Wextra -Wpedantic -Werror, and runs both.
 * It exits with a non-zero code naming the failed step (it has no stdio to print with).
 */
#include "sessync.h"

#ifdef __cplusplus
static_assert(sizeof(sessync_status) == sizeof(uint32_t), "sessync_status is 32 bits");
static_assert(sizeof(sessync_buf) == sizeof(void *) + sizeof(size_t), "sessync_buf layout");
#else
_Static_assert(sizeof(sessync_status) == sizeof(uint32_t), "sessync_status is 32 bits");
_Static_assert(sizeof(sessync_buf) == sizeof(void *) + sizeof(size_t), "sessync_buf layout");
#endif

static int same_text(const uint8_t *a, size_t len, const char *b) {
  size_t i = 0;
  for (; i < len; i++) {
    if (b[i] == 0 || a[i] != (uint8_t)b[i]) {
      return 0;
    }
  }
  return b[i] == 0;
}

int main(void) {
  if (sessync_version_number() != SESSYNC_VERSION_NUMBER) {
    return 2;
  }
  if (sessync_status_str(SESSYNC_STATUS_NOT_FOUND) == NULL) {
    return 3;
  }

  struct sessync_options *options = NULL;
  if (sessync_options_new(&options, NULL) != SESSYNC_STATUS_OK) {
    return 4;
  }
  if (sessync_options_set(options, "ttl", "5m", NULL) != SESSYNC_STATUS_OK) {
    return 5;
  }
  sessync_store *store = NULL;
  sessync_status rc = sessync_store_open("mem://", options, &store, NULL);
  sessync_options_free(options);
  if (rc != SESSYNC_STATUS_OK) {
    return 6;
  }

  const char *id = "headertest-session-01";
  const char *json = "{\"lang\":\"c\"}";
  size_t json_len = 0;
  while (json[json_len] != 0) {
    json_len++;
  }
  uint64_t version = 0;
  if (sessync_store_write(store, id, (const uint8_t *)json, json_len, NULL, 0, 0, &version, NULL) !=
          SESSYNC_STATUS_OK ||
      version != 1) {
    return 7;
  }
  sessync_buf buf = {NULL, 0};
  if (sessync_store_fetch(store, id, &buf, &version, NULL) != SESSYNC_STATUS_OK ||
      !same_text(buf.data, buf.len, json)) {
    return 8;
  }
  sessync_buf_free(&buf);

  sessync_stats stats;
  if (sessync_store_stats(store, &stats, sizeof stats, NULL) != SESSYNC_STATUS_OK || stats.sessions != 1) {
    return 9;
  }

  struct sessync_session *session = NULL;
  if (sessync_session_begin(store, NULL, 0, SESSYNC_BEGIN_LOCK, -1, &session, NULL) !=
          SESSYNC_STATUS_OK ||
      !sessync_session_is_new(session) || sessync_session_id(session) == NULL) {
    return 10;
  }
  sessync_session_free(session);

  char new_id[SESSYNC_ID_MAX_LEN + 1];
  size_t new_len = 0;
  if (sessync_store_rotate(store, id, 0, new_id, sizeof new_id, &new_len, NULL) !=
      SESSYNC_STATUS_OK) {
    return 11;
  }
  sessync_store_free(store);

  const char *message = sessync_last_error_message();
  if (message == NULL || sessync_version() == NULL) {
    return 12;
  }
  return 0;
}
