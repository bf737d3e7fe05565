/* The C side of bench.py: the same fetch and one-key update through the C ABI.
 *   bench_c URL ID ITERATIONS JSON  ->  fetch_per_s=... update_per_s=...
 * It writes JSON as the session's data first (a mem:// store is this process's own). */
#include <sessync.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 5) { fprintf(stderr, "usage: bench_c URL ID ITERATIONS JSON\n"); return 2; }
    const char *id = argv[2];
    long n = atol(argv[3]);
    sessync_store *store = NULL;
    sessync_error err;
    if (sessync_store_open(argv[1], NULL, &store, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    if (sessync_store_write(store, id, (const uint8_t *)argv[4], strlen(argv[4]), NULL, 0, 0, NULL, &err)) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    double t0 = now();
    for (long i = 0; i < n; i++) {
        sessync_buf json = {0};
        uint64_t version = 0;
        if (sessync_store_fetch(store, id, &json, &version, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
        sessync_buf_free(&json);
    }
    double t1 = now();
    char value[32];
    for (long i = 0; i < n; i++) {
        sessync_session *s = NULL;
        if (sessync_session_begin_id(store, id, SESSYNC_BEGIN_LOCK, -1, &s, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
        int len = snprintf(value, sizeof value, "%ld", i);
        if (sessync_session_set(s, "counter", (const uint8_t *)value, (size_t)len, &err)) { fprintf(stderr, "%s\n", err.message); sessync_session_free(s); return 1; }
        if (sessync_session_commit(s, NULL, &err)) { fprintf(stderr, "%s\n", err.message); return 1; }
    }
    double t2 = now();
    printf("fetch_per_s=%.0f update_per_s=%.0f\n", n / (t1 - t0), n / (t2 - t1));
    sessync_store_free(store);
    return 0;
}
