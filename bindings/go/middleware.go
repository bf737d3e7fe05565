package sessync

import (
	"bufio"
	"context"
	"errors"
	"log"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

type contextKey struct{}

// FromContext returns the request's session put there by Middleware, or nil.
func FromContext(ctx context.Context) *Session {
	s, _ := ctx.Value(contextKey{}).(*Session)
	return s
}

// NewContext returns a copy of ctx carrying s (for tests and other frameworks).
func NewContext(ctx context.Context, s *Session) context.Context {
	return context.WithValue(ctx, contextKey{}, s)
}

// Middleware begins the visitor's session for each request (from its Cookie header,
// with the session's lock) and puts it in the request's context (FromContext); the
// session is committed just before the response's header is written (the first
// WriteHeader, Write or Flush), or when the handler returns having written nothing, and
// its Set-Cookie header is added. So a handler changes the session before it writes the
// response; a call on the session after that gets ErrSessionCommitted. An informational
// WriteHeader (1xx but 101, e.g. 103 Early Hints) is passed through and commits nothing.
// A handler that does not return normally (a panic, panic(nil), runtime.Goexit as in
// t.FailNow) aborts the session (nothing written, lock released), and the panic goes on.
//
// Hijack (http.Hijacker) commits the session first: the response header is never sent
// after a hijack, so when that commit needs a Set-Cookie (a new, rotated or destroyed
// session) Hijack does not hijack and returns ErrCookieAtHijack; the cookie is then in
// the header of the ordinary response the handler writes instead. A writer that cannot
// be hijacked returns an error and leaves the session uncommitted.
type Middleware struct {
	Store *Store
	// Wait is the longest wait for the session's lock (0: the store's lock_wait; durations
	// under 1 ms are 1 ms). See NoWait for failing at once.
	Wait time.Duration
	// NoWait fails at once (ErrLockTimeout) when the session's lock is taken (Wait is then
	// ignored).
	NoWait bool
	// NoLock begins sessions without the lock: increments and changes of different
	// keys still lose nothing, but read-modify-writes may.
	NoLock bool
	// OnError answers a request whose session could not begin or commit (nil: a 500,
	// or a 503 on ErrLockTimeout, with the error logged).
	OnError func(w http.ResponseWriter, r *http.Request, err error)
}

// Handler wraps next.
func (m *Middleware) Handler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wait := m.Wait
		if m.NoWait {
			wait = 0
		} else if wait <= 0 {
			wait = DefaultWait
		}
		s, err := m.Store.Begin(strings.Join(r.Header.Values("Cookie"), "; "), !m.NoLock, wait)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		cw := &commitWriter{ResponseWriter: w, s: s, m: m, r: r}
		// Runs however the handler ends, without recover (which misses runtime.Goexit and,
		// before Go 1.21, panic(nil)): a panic goes on after the abort.
		defer func() {
			if !s.Ended() {
				_ = s.Abort()
			}
		}()
		next.ServeHTTP(cw, r.WithContext(NewContext(r.Context(), s)))
		if cw.commit() {
			// The handler wrote nothing: net/http sends 200 with an empty body.
			cw.ResponseWriter.WriteHeader(http.StatusOK)
		}
	})
}

// Wrap is Middleware{Store: st}.Handler(next).
func (st *Store) Wrap(next http.Handler) http.Handler {
	return (&Middleware{Store: st}).Handler(next)
}

func (m *Middleware) fail(w http.ResponseWriter, r *http.Request, err error) {
	if m.OnError != nil {
		m.OnError(w, r, err)
		return
	}
	log.Printf("sessync: %s %s: %v", r.Method, r.URL.Path, err)
	if errors.Is(err, ErrLockTimeout) {
		http.Error(w, http.StatusText(http.StatusServiceUnavailable), http.StatusServiceUnavailable)
		return
	}
	http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
}

// ErrCookieAtHijack is what the middleware's Hijack returns when committing the session
// needs a Set-Cookie header, which a hijacked connection never sends: the connection is
// not hijacked, the session is committed and its cookie is in the response's header, so
// the handler answers normally (the client retries with the cookie).
var ErrCookieAtHijack = errors.New("sessync: the session's commit needs a Set-Cookie header, which a hijacked connection would not send; not hijacked")

// errCommitFailed is what Write returns after the session's commit failed.
var errCommitFailed = errors.New("sessync: the session's commit failed; the response was replaced by an error")

// commitWriter commits the session before the header goes out.
type commitWriter struct {
	http.ResponseWriter
	s      *Session
	m      *Middleware
	r      *http.Request
	once   sync.Once
	failed bool
	cookie bool // the commit added a Set-Cookie header
}

// commit commits once; whether this call did it and it succeeded with nothing written
// yet. On failure the error response is written and later writes are dropped.
func (w *commitWriter) commit() (first bool) {
	w.once.Do(func() {
		first = true
		setCookie, err := w.s.Commit()
		if err != nil {
			w.failed = true
			first = false
			w.m.fail(w.ResponseWriter, w.r, err)
			return
		}
		if setCookie != "" {
			w.ResponseWriter.Header().Add("Set-Cookie", setCookie)
			w.cookie = true
		}
	})
	return first
}

func (w *commitWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		// Informational (103 Early Hints): the final header comes later.
		if !w.failed {
			w.ResponseWriter.WriteHeader(code)
		}
		return
	}
	w.commit()
	if w.failed {
		return
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *commitWriter) Write(b []byte) (int, error) {
	w.commit()
	if w.failed {
		return 0, errCommitFailed
	}
	return w.ResponseWriter.Write(b)
}

// Flush commits, then flushes (http.Flusher).
func (w *commitWriter) Flush() {
	w.commit()
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.failed {
		f.Flush()
	}
}

// Hijack commits, then hands over the connection (http.Hijacker); see Middleware for
// ErrCookieAtHijack.
func (w *commitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("sessync: the response writer cannot be hijacked")
	}
	if w.commit() && w.cookie {
		return nil, nil, ErrCookieAtHijack
	}
	if w.failed {
		return nil, nil, errCommitFailed
	}
	return h.Hijack()
}

// Unwrap gives the underlying writer (http.ResponseController, Go 1.20+).
func (w *commitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
