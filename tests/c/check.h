/*
 * check.h: the assertions of the C test programs in tests/c (no framework).
 *
 * CHECK(expr)             fails unless expr is true.
 * CHECK_OK(call)          fails unless the sessync_status call returns SESSYNC_STATUS_OK.
 * CHECK_STATUS(call, st)  fails unless the call returns st.
 * CHECK_ERROR_HAS(text)   fails unless this thread's last error message contains text.
 *
 * A failure prints file:line, the expression, the status and the thread's last error
 * message, then exits with 1. tests/c_abi.rs shows that output when a program fails.
 */
#ifndef SESSYNC_TEST_CHECK_H
#define SESSYNC_TEST_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sessync.h"

/* The message is read first: it is only valid until the next sessync_* call. */
#define CHECK_FAIL_(what)                                                              \
  do {                                                                                 \
    const char *check_msg_ = sessync_last_error_message();                             \
    fprintf(stderr, "%s:%d: CHECK failed: %s\n  last error: %s\n", __FILE__, __LINE__, \
            what, check_msg_);                                                         \
    fflush(stderr);                                                                    \
    exit(1);                                                                           \
  } while (0)

#define CHECK(expr)       \
  do {                    \
    if (!(expr)) {        \
      CHECK_FAIL_(#expr); \
    }                     \
  } while (0)

#define CHECK_STATUS(call, want)                                                        \
  do {                                                                                  \
    sessync_status check_rc_ = (call);                                                  \
    sessync_status check_want_ = (want);                                                \
    if (check_rc_ != check_want_) {                                                     \
      const char *check_msg_ = sessync_last_error_message();                            \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n  returned %u, expected %u (%s)\n",     \
              __FILE__, __LINE__, #call, (unsigned)check_rc_, (unsigned)check_want_,    \
              #want);                                                                   \
      fprintf(stderr, "  last error: %s\n", check_msg_);                                \
      fprintf(stderr, "  status %u is \"%s\"\n", (unsigned)check_rc_,                   \
              sessync_status_str(check_rc_));                                           \
      fflush(stderr);                                                                   \
      exit(1);                                                                          \
    }                                                                                   \
  } while (0)

#define CHECK_OK(call) CHECK_STATUS(call, SESSYNC_STATUS_OK)

#define CHECK_ERROR_HAS(text)                                                             \
  do {                                                                                    \
    const char *check_msg_ = sessync_last_error_message();                                \
    if (check_msg_ == NULL || strstr(check_msg_, (text)) == NULL) {                       \
      fprintf(stderr, "%s:%d: CHECK failed: last error should contain \"%s\"\n"           \
                      "  last error: %s\n",                                               \
              __FILE__, __LINE__, (text), check_msg_ ? check_msg_ : "(NULL)");            \
      fflush(stderr);                                                                     \
      exit(1);                                                                            \
    }                                                                                     \
  } while (0)

/* A C string as the (bytes, length) pair the JSON and cookie arguments take. */
#define BYTES(s) (const uint8_t *)(s), strlen(s)

/* Whether a library-filled buffer holds exactly the text `s` (and its trailing NUL). */
static inline int buf_is(const sessync_buf *b, const char *s) {
  size_t n = strlen(s);
  if (n == 0) {
    return b->data == NULL && b->len == 0;
  }
  return b->data != NULL && b->len == n && memcmp(b->data, s, n) == 0 && b->data[n] == 0;
}

/* Whether the session `id` holds exactly `json` at `version`. */
static inline int has_data(const sessync_store *store, const char *id, const char *json,
                           uint64_t version) {
  sessync_buf b = {NULL, 0};
  uint64_t v = 0;
  if (sessync_store_fetch(store, id, &b, &v, NULL) != SESSYNC_STATUS_OK) {
    return 0;
  }
  int same = buf_is(&b, json) && v == version;
  if (!same) {
    fprintf(stderr, "  session %s holds %s at version %llu, not %s at version %llu\n", id,
            b.data ? (const char *)b.data : "(empty)", (unsigned long long)v, json,
            (unsigned long long)version);
  }
  sessync_buf_free(&b);
  return same;
}

#endif /* SESSYNC_TEST_CHECK_H */
