package sessync_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sessync.dev/sessync"
)

// exampleHandler counts a visitor's visits with a read-modify-write under the session's
// lock, and hits with an atomic increment.
func exampleHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context())
		var n int
		if _, err := s.Get("n", &n); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if err := s.Set("n", n+1); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		hits, _ := s.Incr("hits", 1)
		fmt.Fprintf(w, "pid %d n %d hits %d\n", os.Getpid(), n+1, hits)
	})
	return mux
}

func serveExample(ln net.Listener, st *sessync.Store) error {
	return http.Serve(ln, (&sessync.Middleware{Store: st}).Handler(exampleHandler()))
}

func cookieOf(t *testing.T, res *http.Response) string {
	t.Helper()
	sc := res.Header.Get("Set-Cookie")
	if sc == "" {
		t.Fatal("no Set-Cookie")
	}
	return strings.SplitN(sc, ";", 2)[0]
}

func get(t *testing.T, url, cookie string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

var countRe = regexp.MustCompile(`pid (\d+) n (\d+) hits (\d+)`)

// Several worker processes (this test binary, started again), each with its own store
// on one sessyncd and its own port; one visitor's 32 concurrent requests spread across
// them, each incrementing one key with a read-modify-write: nothing lost.
func TestProcessesOneVisitorLoseNothing(t *testing.T) {
	url := startSessyncd(t)
	var addrs []string
	for i := 0; i < 4; i++ {
		addrs = append(addrs, "http://"+startWorker(t, url)+"/")
	}
	res, body := get(t, addrs[0], "")
	if !strings.Contains(body, " n 1 ") {
		t.Fatalf("first: %q", body)
	}
	cookie := cookieOf(t, res)

	var mu sync.Mutex
	var counts []int
	pids := map[string]bool{}
	var wg sync.WaitGroup
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			req, _ := http.NewRequest("GET", addrs[i%len(addrs)], nil)
			req.Header.Set("Cookie", cookie)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer res.Body.Close()
			b, _ := io.ReadAll(res.Body)
			m := countRe.FindStringSubmatch(string(b))
			if res.StatusCode != 200 || m == nil {
				t.Errorf("status %d body %q", res.StatusCode, b)
				return
			}
			n, _ := strconv.Atoi(m[2])
			mu.Lock()
			counts = append(counts, n)
			pids[m[1]] = true
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sort.Ints(counts)
	for i, n := range counts {
		if n != i+2 {
			t.Fatalf("counts %v: each request must see a distinct count from 2 to 33", counts)
		}
	}
	if len(pids) != 4 {
		t.Fatalf("served by %d processes, want 4", len(pids))
	}
	_, body = get(t, addrs[1], cookie)
	if m := countRe.FindStringSubmatch(body); m == nil || m[2] != "34" || m[3] != "34" {
		t.Fatalf("last: %q", body)
	}
}

func TestMiddlewareCommitsBeforeTheHeader(t *testing.T) {
	st := openMem(t)
	var after error
	h := (&sessync.Middleware{Store: st}).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context())
		switch r.URL.Path {
		case "/set":
			s.Set("user", "ada")
			w.Header().Set("Content-Type", "text/plain")
			w.WriteHeader(201)
			io.WriteString(w, "created")
			after = s.Set("late", 1) // the header is out: the session was committed
		case "/silent":
			s.Incr("silent", 1) // writes nothing: committed when the handler returns
		case "/panic":
			s.Set("user", "mallory")
			panic(http.ErrAbortHandler)
		case "/logout":
			s.Destroy()
		default:
			var user string
			s.Get("user", &user)
			io.WriteString(w, user)
		}
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()

	res, body := get(t, srv.URL+"/set", "")
	if res.StatusCode != 201 || body != "created" {
		t.Fatalf("%d %q", res.StatusCode, body)
	}
	if !errors.Is(after, sessync.ErrSessionCommitted) {
		t.Fatalf("a change after the header: %v", after)
	}
	cookie := cookieOf(t, res)
	if _, body := get(t, srv.URL+"/", cookie); body != "ada" {
		t.Fatalf("%q", body)
	}
	if res, _ := get(t, srv.URL+"/silent", cookie); res.StatusCode != 200 {
		t.Fatal(res.Status)
	}
	// A panicking handler aborts: nothing written, the lock released.
	req, _ := http.NewRequest("GET", srv.URL+"/panic", nil)
	req.Header.Set("Cookie", cookie)
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	done := make(chan string, 1)
	go func() {
		_, body := get(t, srv.URL+"/", cookie)
		done <- body
	}()
	select {
	case body := <-done:
		if body != "ada" {
			t.Fatalf("after the panic: %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the panicking request kept the lock")
	}
	id := strings.SplitN(cookie, "=", 2)[1]
	if data, _, _ := st.Fetch(id); string(data) != `{"silent":1,"user":"ada"}` {
		t.Fatalf("%s", data)
	}
	res, _ = get(t, srv.URL+"/logout", cookie)
	if !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("logout cookie %q", res.Header.Get("Set-Cookie"))
	}
	if _, _, err := st.Fetch(id); !errors.Is(err, sessync.ErrNotFound) {
		t.Fatalf("after logout: %v", err)
	}
}

func TestMiddlewareLockTimeoutAnswers503(t *testing.T) {
	st := openMem(t)
	var got error
	m := &sessync.Middleware{Store: st, Wait: 50 * time.Millisecond, OnError: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}}
	srv := httptest.NewServer(m.Handler(exampleHandler()))
	defer srv.Close()
	res, _ := get(t, srv.URL, "")
	cookie := cookieOf(t, res)
	holder, err := st.BeginID(strings.SplitN(cookie, "=", 2)[1], true, sessync.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort()
	res, _ = get(t, srv.URL, cookie)
	if res.StatusCode != 503 || !errors.Is(got, sessync.ErrLockTimeout) || got.Error() != "timed out waiting for the session lock" {
		t.Fatalf("%d %v", res.StatusCode, got)
	}
}

// A handler that ends with runtime.Goexit (t.FailNow in a handler) or panic(nil) (whose
// recover() is nil before Go 1.21) still releases the session's lock.
func TestMiddlewareGoexitAndPanicNilRelease(t *testing.T) {
	st := openMem(t)
	m := &sessync.Middleware{Store: st, Wait: 2 * time.Second}
	srv := httptest.NewServer(m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context())
		switch r.URL.Path {
		case "/goexit":
			s.Set("user", "goexit")
			runtime.Goexit()
		case "/panicnil":
			s.Set("user", "panicnil")
			panic(nil)
		case "/set":
			s.Set("user", "ada")
		default:
			var user string
			s.Get("user", &user)
			io.WriteString(w, user)
		}
	})))
	defer srv.Close()
	res, _ := get(t, srv.URL+"/set", "")
	cookie := cookieOf(t, res)
	for _, path := range []string{"/goexit", "/panicnil"} {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Header.Set("Cookie", cookie)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
		res, body := get(t, srv.URL+"/", cookie)
		if res.StatusCode != 200 || body != "ada" {
			t.Fatalf("after %s: %d %q (the lock was kept or the session committed)", path, res.StatusCode, body)
		}
	}
}

// WriteHeader(1xx) (103 Early Hints) is passed through without committing: the session
// can still change, and the cookie goes with the final header.
func TestMiddlewareInformationalHeaderDoesNotCommit(t *testing.T) {
	st := openMem(t)
	var after error
	srv := httptest.NewServer(st.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context())
		w.Header().Set("Link", "</style.css>; rel=preload; as=style")
		w.WriteHeader(http.StatusEarlyHints)
		after = s.Set("user", "ada")
		io.WriteString(w, "ok")
	})))
	defer srv.Close()
	res, body := get(t, srv.URL, "")
	if after != nil || res.StatusCode != 200 || body != "ok" {
		t.Fatalf("%v %d %q", after, res.StatusCode, body)
	}
	id := strings.SplitN(cookieOf(t, res), "=", 2)[1]
	if data, _, _ := st.Fetch(id); string(data) != `{"user":"ada"}` {
		t.Fatalf("%s", data)
	}
}

// Hijack commits; when the commit needs a cookie sent, Hijack refuses (the cookie is in
// the header of the normal response the handler then writes) rather than losing it.
func TestMiddlewareHijack(t *testing.T) {
	st := openMem(t)
	var hijackErr error
	srv := httptest.NewServer(st.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context())
		if r.URL.Path == "/set" {
			s.Set("user", "ada")
		} else {
			s.Incr("n", 1)
		}
		conn, buf, err := w.(http.Hijacker).Hijack()
		hijackErr = err
		if err != nil {
			io.WriteString(w, "no hijack")
			return
		}
		defer conn.Close()
		buf.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close\r\n\r\nhijacked")
		buf.Flush()
	})))
	defer srv.Close()
	res, body := get(t, srv.URL+"/set", "")
	if !errors.Is(hijackErr, sessync.ErrCookieAtHijack) || body != "no hijack" {
		t.Fatalf("%v %q", hijackErr, body)
	}
	cookie := cookieOf(t, res)
	res, body = get(t, srv.URL+"/", cookie)
	if hijackErr != nil || body != "hijacked" {
		t.Fatalf("%v %q", hijackErr, body)
	}
	id := strings.SplitN(cookie, "=", 2)[1]
	if data, _, _ := st.Fetch(id); string(data) != `{"n":1,"user":"ada"}` {
		t.Fatalf("%s", data)
	}
}

// NoWait fails at once on a held lock.
func TestMiddlewareNoWait(t *testing.T) {
	st := openMem(t)
	var got error
	m := &sessync.Middleware{Store: st, NoWait: true, OnError: func(w http.ResponseWriter, r *http.Request, err error) {
		got = err
		http.Error(w, "busy", http.StatusServiceUnavailable)
	}}
	srv := httptest.NewServer(m.Handler(exampleHandler()))
	defer srv.Close()
	res, _ := get(t, srv.URL, "")
	cookie := cookieOf(t, res)
	holder, err := st.BeginID(strings.SplitN(cookie, "=", 2)[1], true, sessync.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Abort()
	start := time.Now()
	res, _ = get(t, srv.URL, cookie)
	if res.StatusCode != 503 || !errors.Is(got, sessync.ErrLockTimeout) || time.Since(start) > time.Second {
		t.Fatalf("%d %v after %v", res.StatusCode, got, time.Since(start))
	}
}
