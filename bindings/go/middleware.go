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
// response; a call on the session after that gets ErrSessionCommitted. A handler that
// panics aborts the session (nothing written, lock released).
type Middleware struct {
	Store *Store
	// Wait is the longest wait for the session's lock (0: the store's lock_wait).
	Wait time.Duration
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
		if wait <= 0 {
			wait = DefaultWait
		}
		s, err := m.Store.Begin(strings.Join(r.Header.Values("Cookie"), "; "), !m.NoLock, wait)
		if err != nil {
			m.fail(w, r, err)
			return
		}
		cw := &commitWriter{ResponseWriter: w, s: s, m: m, r: r}
		defer func() {
			if p := recover(); p != nil {
				_ = s.Abort() // ErrSessionCommitted when it was already committed
				panic(p)
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
		}
	})
	return first
}

func (w *commitWriter) WriteHeader(code int) {
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

// Hijack commits, then hands over the connection (http.Hijacker).
func (w *commitWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	w.commit()
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok || w.failed {
		return nil, nil, errors.New("sessync: the response writer cannot be hijacked")
	}
	return h.Hijack()
}

// Unwrap gives the underlying writer (http.ResponseController, Go 1.20+).
func (w *commitWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
