package sessync_test

import (
	"encoding/json"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"sessync.dev/sessync"
)

func openMem(t *testing.T, opts ...sessync.Option) *sessync.Store {
	t.Helper()
	st, err := sessync.Open("mem://", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestBeginSetIncrCommitResume(t *testing.T) {
	st := openMem(t, sessync.WithOption("cookie_name", "sid"))
	s, err := st.Begin("", true, sessync.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	if !s.IsNew() {
		t.Fatal("a visitor without a cookie gets a new session")
	}
	if err := s.Set("cart", []string{"pear"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Incr("visits", 2); err != nil || n != 2 {
		t.Fatalf("incr: %d %v", n, err)
	}
	setCookie, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^sid=[A-Za-z0-9_-]{32}; Path=/; HttpOnly; SameSite=Lax$`).MatchString(setCookie) {
		t.Fatalf("Set-Cookie %q", setCookie)
	}
	r, err := st.Begin("theme=dark; "+strings.SplitN(setCookie, ";", 2)[0], true, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if r.IsNew() || r.Token() == 0 || r.ID() != s.ID() {
		t.Fatalf("resumed: new=%v token=%d id=%q want %q", r.IsNew(), r.Token(), r.ID(), s.ID())
	}
	var cart []string
	if found, err := r.Get("cart", &cart); err != nil || !found || len(cart) != 1 || cart[0] != "pear" {
		t.Fatalf("cart %v %v %v", cart, found, err)
	}
	var absent string
	if found, err := r.Get("absent", &absent); found || err != nil {
		t.Fatalf("absent: %v %v", found, err)
	}
	if n, _ := r.Int("visits"); n != 2 {
		t.Fatalf("visits %d", n)
	}
	if err := r.Remove("cart"); err != nil {
		t.Fatal(err)
	}
	if c, err := r.Commit(); err != nil || c != "" {
		t.Fatalf("commit: %q %v", c, err)
	}
	data, _, err := st.Fetch(s.ID())
	if err != nil || string(data) != `{"visits":2}` {
		t.Fatalf("fetch: %s %v", data, err)
	}
}

func TestStoreCalls(t *testing.T) {
	st := openMem(t)
	id, err := sessync.GenerateID()
	if err != nil || sessync.CheckID(id) != nil || len(id) != 32 {
		t.Fatalf("id %q %v", id, err)
	}
	if _, _, err := st.Fetch(id); !errors.Is(err, sessync.ErrNotFound) {
		t.Fatalf("fetch absent: %v", err)
	}
	if _, err := st.Write(id, map[string]any{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Patch(id, map[string]any{"a": nil, "b": true}); err != nil {
		t.Fatal(err)
	}
	if n, err := st.Incr(id, "n", 5); err != nil || n != 5 {
		t.Fatalf("incr %d %v", n, err)
	}
	if ok, err := st.Touch(id, time.Minute); err != nil || !ok {
		t.Fatalf("touch %v %v", ok, err)
	}
	rec, err := st.FetchRecord(id)
	var r struct{ TTL int64 }
	if err != nil || json.Unmarshal(rec, &r) != nil || r.TTL != 60000 {
		t.Fatalf("record %s %v", rec, err)
	}
	ids, err := st.IDs()
	if err != nil || len(ids) != 1 || ids[0] != id {
		t.Fatalf("ids %v %v", ids, err)
	}
	if stats, err := st.Stats(); err != nil || stats.Sessions != 1 {
		t.Fatalf("stats %+v %v", stats, err)
	}
	if existed, err := st.Destroy(id); err != nil || !existed {
		t.Fatalf("destroy %v %v", existed, err)
	}
	st.Write(id+"x", map[string]any{})
	if n, err := st.Clear(); err != nil || n != 1 {
		t.Fatalf("clear %d %v", n, err)
	}
}

func TestSessionExtras(t *testing.T) {
	st := openMem(t)
	s, _ := st.Begin("", true, sessync.DefaultWait)
	s.Set("x", 1)
	if err := s.SetBytes("blob", []byte{0xff, 0, 1}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetTTL(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SetOwner("user-1"); err != nil {
		t.Fatal(err)
	}
	old := s.ID()
	id, err := s.Rotate()
	if err != nil || id == old || s.ID() != id {
		t.Fatalf("rotate %q %v", id, err)
	}
	if !s.Changed() {
		t.Fatal("changed")
	}
	data, err := s.Data()
	if err != nil || string(data["x"]) != "1" {
		t.Fatalf("data %v %v", data, err)
	}
	s.Commit()
	r, _ := st.BeginID(id, true, sessync.DefaultWait)
	b, err := r.GetBytes("blob")
	if err != nil || string(b) != "\xff\x00\x01" {
		t.Fatalf("bytes %q %v", b, err)
	}
	r.Destroy()
	r.Commit()
	if _, _, err := st.Fetch(id); !errors.Is(err, sessync.ErrNotFound) {
		t.Fatalf("destroyed: %v", err)
	}
}

// Every status has its sentinel, and errors.Is matches on the status.
func TestErrorsIsEachStatus(t *testing.T) {
	sentinels := map[sessync.Status]error{
		sessync.StatusNotFound: sessync.ErrNotFound, sessync.StatusConflict: sessync.ErrConflict,
		sessync.StatusLockTimeout: sessync.ErrLockTimeout, sessync.StatusStaleToken: sessync.ErrStaleToken,
		sessync.StatusInsufficientSize: sessync.ErrInsufficientSize, sessync.StatusLocked: sessync.ErrLocked,
		sessync.StatusDestroyed: sessync.ErrDestroyed, sessync.StatusRotated: sessync.ErrRotated,
		sessync.StatusFull: sessync.ErrFull, sessync.StatusNullArgument: sessync.ErrNullArgument,
		sessync.StatusInvalidArgument: sessync.ErrInvalidArgument, sessync.StatusInvalidUTF8: sessync.ErrInvalidUTF8,
		sessync.StatusInvalidJSON: sessync.ErrInvalidJSON, sessync.StatusTooLarge: sessync.ErrTooLarge,
		sessync.StatusNotANumber: sessync.ErrNotANumber, sessync.StatusIO: sessync.ErrIO,
		sessync.StatusBackend: sessync.ErrBackend, sessync.StatusAuth: sessync.ErrAuth,
		sessync.StatusProtocol: sessync.ErrProtocol, sessync.StatusPanic: sessync.ErrPanic,
		sessync.StatusCancelled: sessync.ErrCancelled,
	}
	if len(sentinels) != int(sessync.StatusCancelled) {
		t.Fatalf("%d sentinels for %d statuses", len(sentinels), sessync.StatusCancelled)
	}
	for st, sentinel := range sentinels {
		err := error(&sessync.Error{Status: st, Message: "m"})
		for other, o := range sentinels {
			if errors.Is(err, o) != (other == st) {
				t.Fatalf("errors.Is(%v, %v) = %v", st, other, !(other == st))
			}
		}
		if !errors.Is(err, sentinel) || sentinel.Error() != "sessync: "+st.String() {
			t.Fatalf("%v: %q", st, sentinel.Error())
		}
	}
}

// Errors from the engine carry its status and message.
func TestEngineErrors(t *testing.T) {
	st := openMem(t)
	check := func(err error, sentinel error, want string) {
		t.Helper()
		var e *sessync.Error
		if !errors.Is(err, sentinel) || !errors.As(err, &e) || !strings.HasPrefix(e.Message, want) {
			t.Fatalf("got %v, want %v %q", err, sentinel, want)
		}
	}
	_, err := st.BeginID("short", true, sessync.DefaultWait)
	check(err, sessync.ErrInvalidArgument, "invalid argument: session id must be 16 to 48 characters, got 5")
	_, err = sessync.Open("bogus://")
	check(err, sessync.ErrInvalidArgument, `invalid argument: store URL scheme "bogus" is not supported`)
	_, err = sessync.Open("mem://", sessync.WithOption("no_such_option", "1"))
	check(err, sessync.ErrInvalidArgument, `unknown option "no_such_option"`)
	s, _ := st.Begin("", true, sessync.DefaultWait)
	defer s.Abort()
	s.Set("name", "ada")
	_, err = s.Incr("name", 1)
	check(err, sessync.ErrNotANumber, `not a number: key "name" does not hold an integer`)
	check(s.SetJSON("k", []byte("{nope")), sessync.ErrInvalidJSON, "invalid JSON: ")
	check(s.SetJSON("k", []byte("\xff")), sessync.ErrInvalidUTF8, "")
	check(s.SetTTL(0), sessync.ErrInvalidArgument, "invalid argument")
	check(s.Set("a\x00b", 1), sessync.ErrInvalidArgument, "invalid argument: key contains a NUL byte")
	// encoding/json's own errors come back as they are.
	if err := s.Set("f", math.Inf(1)); err == nil || errors.As(err, new(*sessync.Error)) {
		t.Fatalf("Inf: %v", err)
	}
	if err := s.Set("ch", make(chan int)); err == nil {
		t.Fatal("a channel is not JSON")
	}
	if data, _ := s.Data(); len(data) != 1 {
		t.Fatalf("the refused calls changed nothing: %v", data)
	}
}

func TestLockTimeout(t *testing.T) {
	st := openMem(t)
	id, _ := sessync.GenerateID()
	st.Write(id, map[string]any{})
	holder, err := st.BeginID(id, true, sessync.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.BeginID(id, true, 50*time.Millisecond)
	var e *sessync.Error
	if !errors.Is(err, sessync.ErrLockTimeout) || !errors.As(err, &e) || e.Message != "timed out waiting for the session lock" || e.Status != 3 {
		t.Fatalf("%#v", err)
	}
	holder.Abort()
}

// A nil or closed store, a nil session and a session used after its end give errors,
// never a crash.
func TestNilClosedAndEnded(t *testing.T) {
	var nilStore *sessync.Store
	_, err := nilStore.Begin("", true, 0)
	var e *sessync.Error
	if !errors.Is(err, sessync.ErrNullArgument) || !errors.As(err, &e) || e.Message == "" {
		t.Fatalf("nil store: %v", err)
	}
	t.Logf("nil store: %v", err)
	var nilSession *sessync.Session
	if err := nilSession.Set("a", 1); !errors.Is(err, sessync.ErrNullArgument) {
		t.Fatalf("nil session: %v", err)
	}
	if _, err := nilSession.Commit(); !errors.Is(err, sessync.ErrNullArgument) {
		t.Fatalf("nil session commit: %v", err)
	}

	st, _ := sessync.Open("mem://")
	s, _ := st.Begin("", true, 0)
	st.Close()
	st.Close()
	if _, err := st.Begin("", true, 0); !errors.Is(err, sessync.ErrStoreClosed) || err.Error() != "the store is closed" {
		t.Fatalf("closed store: %v", err)
	}
	if _, err := st.IDs(); !errors.Is(err, sessync.ErrInvalidArgument) {
		t.Fatalf("closed store is also an invalid argument: %v", err)
	}
	// A session begun before Close still works.
	if err := s.Set("a", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set("a", 2); !errors.Is(err, sessync.ErrSessionCommitted) || err.Error() != "the session was already committed" {
		t.Fatalf("after commit: %v", err)
	}
	if _, err := s.Commit(); !errors.Is(err, sessync.ErrSessionCommitted) {
		t.Fatalf("commit twice: %v", err)
	}
	if err := s.Abort(); !errors.Is(err, sessync.ErrSessionCommitted) {
		t.Fatalf("abort after commit: %v", err)
	}
	if s.IsNew() || s.Token() != 0 {
		t.Fatal("getters of an ended session are zero")
	}
}

// Goroutines of one process, one visitor, read-modify-writes under the lock: nothing
// lost (the session exists first: a new session has no lock to take).
func TestGoroutinesLoseNothing(t *testing.T) {
	st := openMem(t)
	id, _ := sessync.GenerateID()
	st.Write(id, map[string]any{"n": 0})
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				s, err := st.BeginID(id, true, 10*time.Second)
				if err != nil {
					t.Error(err)
					return
				}
				var n int
				s.Get("n", &n)
				s.Set("n", n+1)
				if _, err := s.Commit(); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	data, _, _ := st.Fetch(id)
	if string(data) != `{"n":160}` {
		t.Fatalf("%s", data)
	}
}

// Durations under a millisecond round up to 1 ms rather than to 0, which the engine
// refuses.
func TestSubMillisecondDurations(t *testing.T) {
	st := openMem(t)
	s, err := st.Begin("", true, sessync.DefaultWait)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTTL(500 * time.Microsecond); err != nil {
		t.Fatalf("SetTTL(500µs): %v", err)
	}
	s.Abort()
	id, _ := sessync.GenerateID()
	if _, err := st.Write(id, map[string]int{"a": 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Touch(id, 500*time.Microsecond); err != nil {
		t.Fatalf("Touch(500µs): %v", err)
	}
}
