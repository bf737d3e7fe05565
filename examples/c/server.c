/*
 * The main job, in C: a small HTTP/1.1 server whose worker threads share one session
 * store through the C ABI (include/sessync.h). The same behaviour as examples/server.rs.
 *
 *     examples/c/run.sh                      # builds, then serves on 127.0.0.1:8080
 *     curl -s -c jar -b jar http://127.0.0.1:8080/     # run it a few times
 *
 * Flags: --port N (0: any free port; default 8080), --workers N (default 4),
 * --store URL (default mem://), --processes N (default 1), --option NAME=VALUE (any
 * sessync_options_set setting, repeatable: cookie_name=connect.sid, cookie_format=express,
 * lock_wait=5s …), --signing-key SECRET (repeatable; the first signs).
 *
 * Every worker thread accept()s on the shared listening socket and serves connections on
 * its own, one request per connection. Each visit to `/` takes the visitor's session
 * lock, increments `visits` and commits; the page names the worker that served it and
 * the count, which keeps counting whichever worker answers. `/logout` destroys the
 * session. Requests are read with a size limit and timeouts; anything malformed gets a
 * 4xx answer and the worker carries on. SIGINT or SIGTERM stops the server cleanly: the
 * workers finish the connection in hand, then the store is freed.
 *
 * Prefork (--processes N, N > 1; examples/c/prefork.sh): the parent listens, then forks N
 * processes that each open their own store (after the fork: a store never crosses one)
 * and run their workers on the inherited listening socket; the page then names the
 * process too. The processes share sessions only through a sessyncd, so a mem:// store
 * is refused. The parent forwards SIGINT/SIGTERM to the processes and waits for them; if
 * one of them ends on its own, it stops the others and exits 1.
 *
 * Plain C11 + POSIX: cc -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude
 * examples/c/server.c target/release/libsessync.a -lgcc_s -lutil -lrt -lpthread -lm -ldl -lc
 */
#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sessync.h"

/* Largest request head (request line and headers, with the empty line) accepted. */
#define MAX_HEAD (16 * 1024)
/* How long a client may stay silent while sending its request or reading the answer,
 * in seconds (SO_RCVTIMEO, SO_SNDTIMEO). */
#define IO_TIMEOUT_S 5
/* How long a client may take to send its whole request head, however it trickles in. */
#define HEAD_DEADLINE_MS 10000
/* After an early answer (4xx), how long and how much of the rest of the request to read
 * and discard before closing, so that the close does not reset the connection and
 * destroy the answer on its way. */
#define LINGER_MS 1000
#define LINGER_BYTES (1024 * 1024)
#define MAX_WORKERS 256
#define MAX_PROCESSES 64

/* ---- shared state ---- */

static sessync_store *g_store;
/* The flow's settings from --option and --signing-key, for every sessync_store_open. */
static sessync_options *g_options;
static int g_listen_fd = -1;
static atomic_bool g_stopping;
/* This process's index under --processes N > 1; -1 when it is the only one. */
static int g_process = -1;

/* "process P worker W" under prefork, else "worker W" (what pages and logs call it). */
static void who(char *out, size_t size, int worker) {
    if (g_process >= 0) {
        snprintf(out, size, "process %d worker %d", g_process, worker);
    } else {
        snprintf(out, size, "worker %d", worker);
    }
}

/* ---- small helpers ---- */

static bool ascii_eq_nocase(const char *a, size_t a_len, const char *b) {
    size_t b_len = strlen(b);
    if (a_len != b_len) {
        return false;
    }
    for (size_t i = 0; i < a_len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z') {
            x = (unsigned char)(x - 'A' + 'a');
        }
        if (y >= 'A' && y <= 'Z') {
            y = (unsigned char)(y - 'A' + 'a');
        }
        if (x != y) {
            return false;
        }
    }
    return true;
}

static bool starts_with(const char *s, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(s, prefix, n) == 0;
}

/* True when s[0..len) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF). */
static bool valid_utf8(const unsigned char *s, size_t len) {
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            n = 1;
            cp = c & 0x1Fu;
        } else if (c >= 0xE0 && c <= 0xEF) {
            n = 2;
            cp = c & 0x0Fu;
        } else if (c >= 0xF0 && c <= 0xF4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false;
        }
        if (len - i <= n) {
            return false;
        }
        for (size_t k = 1; k <= n; k++) {
            if ((s[i + k] & 0xC0u) != 0x80u) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3Fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += n + 1;
    }
    return true;
}

static long elapsed_ms(const struct timespec *since) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - since->tv_sec) * 1000 +
           (long)(now.tv_nsec - since->tv_nsec) / 1000000;
}

static void set_timeout(int fd, int option, long ms) {
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    /* Best effort: without it the connection is only less protected. */
    (void)setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

/* Sends every byte of the pieces, across partial writes and EINTR. False if the client
 * went away or timed out. MSG_NOSIGNAL: a closed peer is EPIPE, never SIGPIPE. */
static bool send_all(int fd, struct iovec *iov, int iovcnt) {
    while (iovcnt > 0) {
        if (iov->iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = iov;
        msg.msg_iovlen = (size_t)iovcnt;
        ssize_t n = sendmsg(fd, &msg, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        size_t left = (size_t)n;
        while (iovcnt > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + left;
            iov->iov_len -= left;
        }
    }
    return true;
}

/* ---- requests ---- */

enum head_result {
    HEAD_OK,
    HEAD_GONE,      /* the client went away or timed out: nothing to answer */
    HEAD_TOO_LARGE, /* over MAX_HEAD: 431 */
    HEAD_MALFORMED, /* not HTTP we understand: 400 */
};

struct request {
    /* The head, with room for one byte over the limit (to tell "too large"). */
    char head[MAX_HEAD + 1];
    size_t head_len; /* bytes of the head, up to and including its empty line */
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    /* The Cookie headers' values, joined with "; " (shorter than the head). */
    char cookie[MAX_HEAD];
    size_t cookie_len;
    bool has_cookie;
    const char *why; /* for HEAD_MALFORMED: a line for the 400 body */
};

/* Reads until the empty line that ends the head. Lines end with LF; CRs before it are
 * dropped. Bytes after the head (a body, a pipelined request) are ignored. */
static enum head_result read_head(int fd, struct request *req) {
    size_t used = 0;
    size_t line_start = 0;
    size_t scanned = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        /* Each wait is bounded by the receive timeout, the whole head by its deadline. */
        long left = HEAD_DEADLINE_MS - elapsed_ms(&start);
        if (left <= 0) {
            return HEAD_GONE;
        }
        if (left < IO_TIMEOUT_S * 1000L) {
            set_timeout(fd, SO_RCVTIMEO, left);
        }
        ssize_t n = recv(fd, req->head + used, sizeof req->head - used, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return HEAD_GONE; /* timeout (EAGAIN), reset, ... */
        }
        if (n == 0) {
            if (used == 0) {
                return HEAD_GONE;
            }
            req->why = "the request head ended early";
            return HEAD_MALFORMED;
        }
        used += (size_t)n;
        for (; scanned < used; scanned++) {
            if (req->head[scanned] != '\n') {
                continue;
            }
            size_t k = line_start;
            while (k < scanned && req->head[k] == '\r') {
                k++;
            }
            if (k == scanned) { /* an empty line: the end of the head */
                if (scanned + 1 > MAX_HEAD) {
                    return HEAD_TOO_LARGE;
                }
                req->head_len = scanned + 1;
                return HEAD_OK;
            }
            line_start = scanned + 1;
        }
        if (used == sizeof req->head) {
            return HEAD_TOO_LARGE;
        }
    }
}

/* The next line of head[*pos..end), without its CRs and LF; false at the end. */
static bool next_line(const char *head, size_t end, size_t *pos, const char **line,
                      size_t *len) {
    if (*pos >= end) {
        return false;
    }
    const char *start = head + *pos;
    const char *nl = memchr(start, '\n', end - *pos);
    size_t n = nl ? (size_t)(nl - start) : end - *pos;
    *pos += n + (nl ? 1 : 0);
    while (n > 0 && start[n - 1] == '\r') {
        n--;
    }
    *line = start;
    *len = n;
    return true;
}

static bool is_space(char c) {
    return c == ' ' || c == '\t';
}

/* Parses the head read by read_head: the request line, then the headers. */
static enum head_result parse_head(struct request *req) {
    if (!valid_utf8((const unsigned char *)req->head, req->head_len)) {
        req->why = "not UTF-8";
        return HEAD_MALFORMED;
    }
    size_t pos = 0;
    const char *line;
    size_t len;
    if (!next_line(req->head, req->head_len, &pos, &line, &len) || len == 0) {
        req->why = "no request line";
        return HEAD_MALFORMED;
    }
    /* METHOD SP PATH SP VERSION, single spaces. */
    const char *sp1 = memchr(line, ' ', len);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - line)) : NULL;
    const char *third = sp2 ? sp2 + 1 : NULL;
    size_t third_len = sp2 ? len - (size_t)(third - line) : 0;
    if (!sp2 || memchr(third, ' ', third_len)) {
        req->why = "the request line is not METHOD PATH VERSION";
        return HEAD_MALFORMED;
    }
    req->method = line;
    req->method_len = (size_t)(sp1 - line);
    req->path = sp1 + 1;
    req->path_len = (size_t)(sp2 - (sp1 + 1));
    if (!starts_with(third, third_len, "HTTP/1.") || req->path_len == 0 ||
        req->path[0] != '/') {
        req->why = "not an HTTP/1.x request";
        return HEAD_MALFORMED;
    }
    req->cookie_len = 0;
    req->has_cookie = false;
    while (next_line(req->head, req->head_len, &pos, &line, &len)) {
        if (len == 0) {
            break; /* the empty line that ends the head */
        }
        const char *colon = memchr(line, ':', len);
        if (!colon) {
            req->why = "a header line without a colon";
            return HEAD_MALFORMED;
        }
        if (!ascii_eq_nocase(line, (size_t)(colon - line), "cookie")) {
            continue;
        }
        const char *v = colon + 1;
        size_t v_len = len - (size_t)(v - line);
        while (v_len > 0 && is_space(v[0])) {
            v++;
            v_len--;
        }
        while (v_len > 0 && is_space(v[v_len - 1])) {
            v_len--;
        }
        /* Fits: every value came with at least "cookie:" and a line end around it. */
        if (req->has_cookie) {
            memcpy(req->cookie + req->cookie_len, "; ", 2);
            req->cookie_len += 2;
        }
        memcpy(req->cookie + req->cookie_len, v, v_len);
        req->cookie_len += v_len;
        req->has_cookie = true;
    }
    return HEAD_OK;
}

/* ---- responses ---- */

/* Sends a whole answer; set_cookie may be NULL. */
static void respond(int fd, const char *status, const char *extra_headers,
                    const char *set_cookie, size_t set_cookie_len, const char *body,
                    size_t body_len) {
    char head[512];
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\n"
                     "Content-Type: text/plain; charset=utf-8\r\n"
                     "Content-Length: %zu\r\n"
                     "Cache-Control: no-store\r\n"
                     "Connection: close\r\n"
                     "%s",
                     status, body_len, extra_headers ? extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof head) {
        return; /* cannot happen with the fixed statuses used here */
    }
    char sc_name[] = "Set-Cookie: ";
    char crlf[] = "\r\n";
    char end[] = "\r\n";
    struct iovec iov[6] = {
        {.iov_base = head, .iov_len = (size_t)n},
        {.iov_base = sc_name, .iov_len = set_cookie ? sizeof sc_name - 1 : 0},
        {.iov_base = (void *)set_cookie, .iov_len = set_cookie ? set_cookie_len : 0},
        {.iov_base = crlf, .iov_len = set_cookie ? 2 : 0},
        {.iov_base = end, .iov_len = 2},
        {.iov_base = (void *)body, .iov_len = body_len},
    };
    /* A client that has gone away cannot be answered; the worker carries on. */
    (void)send_all(fd, iov, 6);
}

static void respond_text(int fd, const char *status, const char *extra_headers,
                         const char *body) {
    respond(fd, status, extra_headers, NULL, 0, body, strlen(body));
}

/* After an early answer: stop sending, then read and drop what the client still sends
 * (for a while, up to a limit), so that closing with unread bytes does not send a reset
 * that could destroy the answer before the client reads it. */
static void linger_close(int fd) {
    if (shutdown(fd, SHUT_WR) == 0) {
        struct timespec start;
        clock_gettime(CLOCK_MONOTONIC, &start);
        set_timeout(fd, SO_RCVTIMEO, 200);
        char sink[4096];
        size_t total = 0;
        while (total < LINGER_BYTES && elapsed_ms(&start) < LINGER_MS) {
            ssize_t n = recv(fd, sink, sizeof sink, 0);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n <= 0) {
                break;
            }
            total += (size_t)n;
        }
    }
    close(fd);
}

/* ---- the two pages ---- */

/* Fills body with "session store: <last error>\n", right after a failed sessync call
 * (the message is only valid until the next sessync_* call on this thread). */
static void store_error(char *body, size_t size, sessync_status rc) {
    const char *msg = sessync_last_error_message();
    if (msg[0] == '\0') {
        msg = sessync_status_str(rc);
    }
    snprintf(body, size, "session store: %s\n", msg);
}

/* GET /: one more visit, under the session's lock. Returns true for 200, false for 503
 * (body then holds the error). On true, *cookie holds the Set-Cookie value or is empty. */
static bool visit(int worker, const struct request *req, sessync_buf *cookie, char *body,
                  size_t size) {
    sessync_session *s = NULL;
    sessync_status rc =
        sessync_session_begin(g_store, (const uint8_t *)req->cookie, req->cookie_len,
                              SESSYNC_BEGIN_LOCK, -1, &s,
                              NULL);
    if (rc) {
        store_error(body, size, rc);
        return false;
    }
    int64_t visits = 0;
    rc = sessync_session_incr(s, "visits", 1, &visits, NULL);
    if (rc) {
        store_error(body, size, rc);
        sessync_session_free(s); /* aborts: releases the lock, writes nothing */
        return false;
    }
    rc = sessync_session_commit(s, cookie, NULL); /* consumes s, even on failure */
    if (rc) {
        store_error(body, size, rc);
        return false;
    }
    char name[64];
    who(name, sizeof name, worker);
    snprintf(body, size, "%s served you; visits: %" PRId64 "\n", name, visits);
    return true;
}

/* GET /logout: destroy the session; the answer carries the removal cookie. */
static bool logout(int worker, const struct request *req, sessync_buf *cookie, char *body,
                   size_t size) {
    sessync_session *s = NULL;
    sessync_status rc = sessync_session_begin(g_store, (const uint8_t *)req->cookie,
                                              req->cookie_len, 0, -1, &s,
                                              NULL);
    if (rc) {
        store_error(body, size, rc);
        return false;
    }
    rc = sessync_session_destroy(s, NULL);
    if (rc) {
        store_error(body, size, rc);
        sessync_session_free(s);
        return false;
    }
    rc = sessync_session_commit(s, cookie, NULL);
    if (rc) {
        store_error(body, size, rc);
        return false;
    }
    char name[64];
    who(name, sizeof name, worker);
    snprintf(body, size, "%s: logged out\n", name);
    return true;
}

/* Serves one connection and closes it. */
static void serve(int worker, int fd, struct request *req) {
    set_timeout(fd, SO_RCVTIMEO, IO_TIMEOUT_S * 1000L);
    set_timeout(fd, SO_SNDTIMEO, IO_TIMEOUT_S * 1000L);
    enum head_result r = read_head(fd, req);
    if (r == HEAD_OK) {
        r = parse_head(req);
    }
    switch (r) {
    case HEAD_GONE:
        close(fd);
        return;
    case HEAD_TOO_LARGE:
        respond_text(fd, "431 Request Header Fields Too Large", NULL,
                     "request head too large\n");
        linger_close(fd);
        return;
    case HEAD_MALFORMED: {
        char body[128];
        snprintf(body, sizeof body, "%s\n", req->why);
        respond_text(fd, "400 Bad Request", NULL, body);
        linger_close(fd);
        return;
    }
    case HEAD_OK:
        break;
    }
    if (req->method_len != 3 || memcmp(req->method, "GET", 3) != 0) {
        respond_text(fd, "405 Method Not Allowed", "Allow: GET\r\n", "only GET\n");
        linger_close(fd);
        return;
    }
    bool is_root = req->path_len == 1;
    bool is_logout = req->path_len == 7 && memcmp(req->path, "/logout", 7) == 0;
    if (!is_root && !is_logout) {
        respond_text(fd, "404 Not Found", NULL, "not found\n");
        linger_close(fd);
        return;
    }
    sessync_buf cookie = {.data = NULL, .len = 0};
    char body[1024];
    bool ok = is_root ? visit(worker, req, &cookie, body, sizeof body)
                      : logout(worker, req, &cookie, body, sizeof body);
    if (ok) {
        respond(fd, "200 OK", NULL, cookie.data ? (const char *)cookie.data : NULL,
                cookie.len, body, strlen(body));
    } else {
        char name[64];
        who(name, sizeof name, worker);
        fprintf(stderr, "%s: %s", name, body);
        respond_text(fd, "503 Service Unavailable", NULL, body);
    }
    sessync_buf_free(&cookie); /* a no-op when empty */
    close(fd);
}

/* ---- workers ---- */

struct worker {
    pthread_t thread;
    int id;
};

static void *worker_main(void *arg) {
    const struct worker *w = arg;
    /* One request buffer per worker, reused for every connection. */
    struct request *req = malloc(sizeof *req);
    if (!req) {
        fprintf(stderr, "worker %d: out of memory\n", w->id);
        return NULL;
    }
    for (;;) {
        int fd = accept(g_listen_fd, NULL, NULL);
        if (atomic_load(&g_stopping)) {
            if (fd >= 0) {
                close(fd);
            }
            break;
        }
        if (fd < 0) {
            switch (errno) {
            case EINTR:
            case ECONNABORTED:
            case EPROTO:
                continue;
            case EINVAL:
                /* The listening socket was shut down: under prefork, by a sibling
                 * process that is stopping (so is this one: the parent signals all). */
                break;
            default: {
                /* Out of descriptors or memory: say so, then give it a moment. */
                fprintf(stderr, "worker %d: accept failed: %s\n", w->id, strerror(errno));
                struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
                nanosleep(&pause, NULL);
                continue;
            }
            }
            break; /* EINVAL */
        }
        serve(w->id, fd, req);
    }
    free(req);
    return NULL;
}

/* ---- main ---- */

static const char usage[] =
    "usage: c-server [--port N] [--workers N] [--store URL] [--processes N]\n"
    "                [--option NAME=VALUE]... [--signing-key SECRET]...\n";

/* Parses a whole decimal number in [min, max]. */
static bool parse_num(const char *s, long min, long max, long *out) {
    if (!s || !*s) {
        return false;
    }
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

/* Runs `workers` worker threads on g_listen_fd with g_store until SIGINT or SIGTERM (which
 * the caller has blocked), then stops them and frees the store. The process's exit code. */
static int run_workers(long workers) {
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);

    static struct worker pool[MAX_WORKERS];
    int started = 0;
    for (; started < workers; started++) {
        pool[started].id = started;
        int err = pthread_create(&pool[started].thread, NULL, worker_main, &pool[started]);
        if (err) {
            fprintf(stderr, "cannot start worker %d: %s\n", started, strerror(err));
            break;
        }
    }

    int sig = 0;
    if (started > 0) {
        while (sigwait(&stop_signals, &sig) != 0) {
        }
    }

    /* Stop: wake every accept() (shutdown of a listening socket does on Linux), let each
     * worker finish its connection, then free the store. Under prefork the listening
     * socket is shared, so a sibling may have shut it down already (ENOTCONN): its
     * shutdown woke this process's accept() calls as well. */
    atomic_store(&g_stopping, true);
    if (shutdown(g_listen_fd, SHUT_RDWR) != 0 && !(g_process >= 0 && errno == ENOTCONN)) {
        /* Elsewhere accept() may stay blocked: exit without waiting for the workers. */
        fprintf(stderr, "stopping (signal %d)\n", sig);
        return 0;
    }
    for (int i = 0; i < started; i++) {
        pthread_join(pool[i].thread, NULL);
    }
    close(g_listen_fd);
    sessync_store_free(g_store);
    if (g_process < 0) {
        fprintf(stderr, "stopped (signal %d)\n", sig);
    }
    return started > 0 ? 0 : 1;
}

/* SIGCHLD must be delivered (to sigwait) rather than discarded: a handler that does
 * nothing makes sure of it wherever SIG_DFL would drop it. */
static void on_sigchld(int sig) {
    (void)sig;
}

/* The prefork parent: forks `processes` children that each open their own store and run
 * their workers, then waits. SIGINT/SIGTERM are forwarded to the children; when they have
 * all ended, 0 if each ended cleanly. A child that ends on its own (it could not open
 * the store, it crashed) stops the others, and the parent exits 1. */
static int run_processes(long processes, long workers, const char *store_url) {
    static pid_t kids[MAX_PROCESSES];
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGINT);
    sigaddset(&waited, SIGTERM);
    sigaddset(&waited, SIGCHLD);

    int live = 0;
    int code = 0;
    bool stopping = false;
    for (long i = 0; i < processes; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "cannot start process %ld: %s\n", i, strerror(errno));
            code = 1;
            stopping = true;
            break;
        }
        if (pid == 0) {
            /* The child: only now a store, its own. It waits for SIGINT/SIGTERM (still
             * blocked, as in the parent). */
            g_process = (int)i;
            sigset_t chld;
            sigemptyset(&chld);
            sigaddset(&chld, SIGCHLD);
            pthread_sigmask(SIG_UNBLOCK, &chld, NULL);
            sessync_status rc = sessync_store_open(store_url, g_options, &g_store, NULL);
            if (rc) {
                fprintf(stderr, "process %ld: cannot open the store: %s\n", i,
                        sessync_last_error_message());
                return 2;
            }
            return run_workers(workers);
        }
        kids[i] = pid;
        live++;
    }
    /* Only the children accept: the parent keeps the socket open but never uses it. */
    if (stopping) {
        for (long i = 0; i < processes; i++) {
            if (kids[i] > 0) {
                kill(kids[i], SIGTERM);
            }
        }
    }

    while (live > 0) {
        int sig = 0;
        if (sigwait(&waited, &sig) != 0) {
            continue;
        }
        if (sig == SIGCHLD) {
            int status = 0;
            pid_t pid;
            while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                long idx = -1;
                for (long i = 0; i < processes; i++) {
                    if (kids[i] == pid) {
                        idx = i;
                        kids[i] = 0;
                    }
                }
                if (idx < 0) {
                    continue;
                }
                live--;
                bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
                if (!clean) {
                    if (WIFSIGNALED(status)) {
                        fprintf(stderr, "process %ld (pid %ld) ended by signal %d\n", idx,
                                (long)pid, WTERMSIG(status));
                    } else {
                        fprintf(stderr, "process %ld (pid %ld) exited with %d\n", idx,
                                (long)pid, WEXITSTATUS(status));
                    }
                }
                if (!stopping) {
                    /* Ended on its own, clean or not: the group is one server. */
                    fprintf(stderr, "process %ld ended unexpectedly: stopping the others\n",
                            idx);
                    clean = false;
                }
                if (!clean) {
                    code = 1;
                }
                if (!stopping) {
                    stopping = true;
                    for (long i = 0; i < processes; i++) {
                        if (kids[i] > 0) {
                            kill(kids[i], SIGTERM);
                        }
                    }
                }
            }
        } else if (!stopping) {
            stopping = true;
            for (long i = 0; i < processes; i++) {
                if (kids[i] > 0) {
                    kill(kids[i], sig);
                }
            }
        }
    }
    close(g_listen_fd);
    fprintf(stderr, "stopped (%ld processes)\n", processes);
    return code;
}

int main(int argc, char **argv) {
    long port = 8080, workers = 4, processes = 1;
    const char *store_url = "mem://";
    for (int i = 1; i < argc; i++) {
        const char *flag = argv[i];
        if (strcmp(flag, "--help") == 0 || strcmp(flag, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        bool known = strcmp(flag, "--port") == 0 || strcmp(flag, "--workers") == 0 ||
                     strcmp(flag, "--store") == 0 || strcmp(flag, "--processes") == 0 ||
                     strcmp(flag, "--option") == 0 || strcmp(flag, "--signing-key") == 0;
        if (!known) {
            fprintf(stderr, "unknown argument \"%s\"\n%s", flag, usage);
            return 2;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "%s needs a value\n", flag);
            return 2;
        }
        const char *value = argv[++i];
        if (strcmp(flag, "--port") == 0 && !parse_num(value, 0, 65535, &port)) {
            fprintf(stderr, "--port: not a port number: %s\n", value);
            return 2;
        }
        if (strcmp(flag, "--workers") == 0 && !parse_num(value, 1, MAX_WORKERS, &workers)) {
            fprintf(stderr, "--workers must be between 1 and %d\n", MAX_WORKERS);
            return 2;
        }
        if (strcmp(flag, "--processes") == 0 &&
            !parse_num(value, 1, MAX_PROCESSES, &processes)) {
            fprintf(stderr, "--processes must be between 1 and %d\n", MAX_PROCESSES);
            return 2;
        }
        if (strcmp(flag, "--store") == 0) {
            store_url = value;
        }
        if (strcmp(flag, "--option") == 0 || strcmp(flag, "--signing-key") == 0) {
            if (!g_options && sessync_options_new(&g_options, NULL) != SESSYNC_STATUS_OK) {
                fprintf(stderr, "out of memory\n");
                return 1;
            }
            sessync_status rc;
            if (strcmp(flag, "--signing-key") == 0) {
                rc = sessync_options_add_signing_key(g_options, (const uint8_t *)value,
                                                     strlen(value),
                                                     NULL);
            } else {
                char name[64];
                const char *eq = strchr(value, '=');
                size_t n = eq ? (size_t)(eq - value) : 0;
                if (!eq || n == 0 || n >= sizeof name) {
                    fprintf(stderr, "--option takes NAME=VALUE, got \"%s\"\n", value);
                    sessync_options_free(g_options);
                    return 2;
                }
                memcpy(name, value, n);
                name[n] = '\0';
                rc = sessync_options_set(g_options, name, eq + 1, NULL);
            }
            if (rc) {
                fprintf(stderr, "%s %s: %s\n", flag, value, sessync_last_error_message());
                sessync_options_free(g_options);
                return 2;
            }
        }
    }
    if (processes > 1 && strncmp(store_url, "mem:", 4) == 0) {
        fprintf(stderr,
                "--processes %ld needs a store the processes share, such as a sessyncd "
                "(--store unix:///path/to/sessync.sock): with %s each process would have "
                "its own sessions (see examples/c/prefork.sh)\n",
                processes, store_url);
        return 2;
    }

    if (sessync_version_number() != SESSYNC_VERSION_NUMBER) {
        fprintf(stderr, "sessync.h is version %d but the library is %s\n",
                SESSYNC_VERSION_NUMBER, sessync_version());
        return 1;
    }
    /* One process: the store first, as before. Prefork: each child opens its own. */
    if (processes == 1) {
        sessync_status rc = sessync_store_open(store_url, g_options, &g_store, NULL);
        if (rc) {
            fprintf(stderr, "cannot open the store: %s\n", sessync_last_error_message());
            return 2;
        }
    }

    /* A write to a closed connection must be an error, not the end of the process
     * (send_all also passes MSG_NOSIGNAL; this covers every other path). */
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    sigemptyset(&ign.sa_mask);
    sigaction(SIGPIPE, &ign, NULL);

    g_listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (g_listen_fd < 0) {
        perror("socket");
        sessync_store_free(g_store);
        return 1;
    }
    int one = 1;
    (void)setsockopt(g_listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(g_listen_fd, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(g_listen_fd, SOMAXCONN) != 0) {
        fprintf(stderr, "cannot listen on 127.0.0.1:%ld: %s\n", port, strerror(errno));
        close(g_listen_fd);
        sessync_store_free(g_store);
        return 1;
    }
    socklen_t addr_len = sizeof addr;
    if (getsockname(g_listen_fd, (struct sockaddr *)&addr, &addr_len) == 0) {
        port = ntohs(addr.sin_port);
    }

    /* SIGINT and SIGTERM (and, for the prefork parent, SIGCHLD) are taken by sigwait;
     * the workers and the forked processes inherit the mask. */
    sigset_t blocked;
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGINT);
    sigaddset(&blocked, SIGTERM);
    if (processes > 1) {
        struct sigaction chld;
        memset(&chld, 0, sizeof chld);
        chld.sa_handler = on_sigchld;
        sigemptyset(&chld.sa_mask);
        sigaction(SIGCHLD, &chld, NULL);
        sigaddset(&blocked, SIGCHLD);
    }
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);

    if (processes > 1) {
        printf("listening on http://127.0.0.1:%ld with %ld processes x %ld workers, store %s\n",
               port, processes, workers, store_url);
    } else {
        printf("listening on http://127.0.0.1:%ld with %ld workers, store %s\n", port, workers,
               store_url);
    }
    /* Before any fork: the children must not inherit (and print again) buffered output. */
    fflush(stdout);

    int code =
        processes > 1 ? run_processes(processes, workers, store_url) : run_workers(workers);
    sessync_options_free(g_options); /* NULL when no option was given */
    return code;
}
