// Package sessync is the Go binding of sessync, one session store shared by every
// worker of a web application, over the library's C ABI through cgo.
//
// A Store is opened once per process and shared by all goroutines; each request begins a
// Session (taking the session's lock), reads and changes it, and commits it: the changes
// are written as one atomic patch, increments as increments, so concurrent requests of
// one visitor lose nothing. Middleware puts the session in the request's context for
// net/http; SCSStore gives scs (alexedwards/scs) a store.
//
// Linking: the package links the static library target/release/libsessync.a of the
// repository it sits in (run `cargo build --release --lib` first), so a program needs
// no libsessync.so at run time. Every call passes its own sessync_error and builds the
// Go error from it (never from sessync_last_error_message, which belongs to an OS thread
// a goroutine may have left). A call that waits for a session's lock blocks its
// goroutine (and the OS thread cgo runs it on), never the others.
package sessync

/*
#cgo CFLAGS: -I${SRCDIR}/../../include
#cgo LDFLAGS: ${SRCDIR}/../../target/release/libsessync.a -lpthread -ldl -lm -lgcc_s -lutil -lrt -lc
#include <stdlib.h>
#include "sessync.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Status is a sessync_status: what a call of the C ABI returned.
type Status uint32

// The statuses of include/sessync.h (numbers are never reused).
const (
	StatusOK               Status = C.SESSYNC_STATUS_OK
	StatusNotFound         Status = C.SESSYNC_STATUS_NOT_FOUND
	StatusConflict         Status = C.SESSYNC_STATUS_CONFLICT
	StatusLockTimeout      Status = C.SESSYNC_STATUS_LOCK_TIMEOUT
	StatusStaleToken       Status = C.SESSYNC_STATUS_STALE_TOKEN
	StatusInsufficientSize Status = C.SESSYNC_STATUS_INSUFFICIENT_SIZE
	StatusLocked           Status = C.SESSYNC_STATUS_LOCKED
	StatusDestroyed        Status = C.SESSYNC_STATUS_DESTROYED
	StatusRotated          Status = C.SESSYNC_STATUS_ROTATED
	StatusFull             Status = C.SESSYNC_STATUS_FULL
	StatusNullArgument     Status = C.SESSYNC_STATUS_NULL_ARGUMENT
	StatusInvalidArgument  Status = C.SESSYNC_STATUS_INVALID_ARGUMENT
	StatusInvalidUTF8      Status = C.SESSYNC_STATUS_INVALID_UTF8
	StatusInvalidJSON      Status = C.SESSYNC_STATUS_INVALID_JSON
	StatusTooLarge         Status = C.SESSYNC_STATUS_TOO_LARGE
	StatusNotANumber       Status = C.SESSYNC_STATUS_NOT_A_NUMBER
	StatusIO               Status = C.SESSYNC_STATUS_IO
	StatusBackend          Status = C.SESSYNC_STATUS_BACKEND
	StatusAuth             Status = C.SESSYNC_STATUS_AUTH
	StatusProtocol         Status = C.SESSYNC_STATUS_PROTOCOL
	StatusPanic            Status = C.SESSYNC_STATUS_PANIC
	StatusCancelled        Status = C.SESSYNC_STATUS_CANCELLED
)

// String is the status's short static description (sessync_status_str).
func (s Status) String() string {
	return C.GoString(C.sessync_status_str(C.uint32_t(s)))
}

// Error is a failed call: the status and the engine's message, from the sessync_error
// the call filled. errors.Is(err, ErrNotFound) (and each Err… sentinel) compares the
// status.
type Error struct {
	Status  Status
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return "sessync: " + e.Status.String()
	}
	return e.Message
}

// Is matches a sentinel: the same status, and the same message when the target has one.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Status == e.Status && (t.Message == "" || t.Message == e.Message)
}

// Sentinels for errors.Is, one per status.
var (
	ErrNotFound         = &Error{Status: StatusNotFound}
	ErrConflict         = &Error{Status: StatusConflict}
	ErrLockTimeout      = &Error{Status: StatusLockTimeout}
	ErrStaleToken       = &Error{Status: StatusStaleToken}
	ErrInsufficientSize = &Error{Status: StatusInsufficientSize}
	ErrLocked           = &Error{Status: StatusLocked}
	ErrDestroyed        = &Error{Status: StatusDestroyed}
	ErrRotated          = &Error{Status: StatusRotated}
	ErrFull             = &Error{Status: StatusFull}
	ErrNullArgument     = &Error{Status: StatusNullArgument}
	ErrInvalidArgument  = &Error{Status: StatusInvalidArgument}
	ErrInvalidUTF8      = &Error{Status: StatusInvalidUTF8}
	ErrInvalidJSON      = &Error{Status: StatusInvalidJSON}
	ErrTooLarge         = &Error{Status: StatusTooLarge}
	ErrNotANumber       = &Error{Status: StatusNotANumber}
	ErrIO               = &Error{Status: StatusIO}
	ErrBackend          = &Error{Status: StatusBackend}
	ErrAuth             = &Error{Status: StatusAuth}
	ErrProtocol         = &Error{Status: StatusProtocol}
	ErrPanic            = &Error{Status: StatusPanic}
	ErrCancelled        = &Error{Status: StatusCancelled}

	// ErrStoreClosed: a call on a Store after Close (raised by the binding; also an
	// ErrInvalidArgument).
	ErrStoreClosed = &Error{Status: StatusInvalidArgument, Message: "the store is closed"}
	// ErrSessionCommitted and ErrSessionAborted: a call on a Session after Commit or
	// Abort (raised by the binding; also ErrInvalidArgument).
	ErrSessionCommitted = &Error{Status: StatusInvalidArgument, Message: "the session was already committed"}
	ErrSessionAborted   = &Error{Status: StatusInvalidArgument, Message: "the session was already aborted"}
)

// The header's version; Open refuses a library of another version.
const headerVersion = uint32(C.SESSYNC_VERSION_NUMBER)

func errorOf(rc C.sessync_status, e *C.sessync_error) error {
	if rc == C.SESSYNC_STATUS_OK {
		return nil
	}
	st := Status(e.status)
	if st == StatusOK {
		st = Status(rc)
	}
	n := int(e.len)
	if n > len(e.message) {
		n = len(e.message)
	}
	msg := C.GoStringN(&e.message[0], C.int(n))
	if msg == "" {
		msg = st.String()
	}
	return &Error{Status: st, Message: msg}
}

// cstr is a C copy of s, or an error for a string C cannot hold (a NUL byte).
func cstr(s, what string) (*C.char, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf("invalid argument: %s contains a NUL byte", what)}
		}
	}
	return C.CString(s), nil
}

func bytesPtr(b []byte) *C.uint8_t {
	if len(b) == 0 {
		return nil
	}
	return (*C.uint8_t)(unsafe.Pointer(&b[0]))
}

// takeBuf copies a library-filled buffer into Go memory and frees it (nil when empty).
func takeBuf(b *C.sessync_buf) []byte {
	if b.data == nil {
		return nil
	}
	out := C.GoBytes(unsafe.Pointer(b.data), C.int(b.len))
	C.sessync_buf_free(b)
	return out
}

func waitMS(d time.Duration) C.int64_t {
	if d < 0 {
		return -1
	}
	return C.int64_t(millis(d))
}

// millis is d in whole milliseconds, a positive d under 1 ms being 1 ms (not 0, which
// the engine refuses as a TTL and reads as "fail at once" as a wait).
func millis(d time.Duration) uint64 {
	if d <= 0 {
		return 0
	}
	if d < time.Millisecond {
		return 1
	}
	return uint64(d / time.Millisecond)
}

// Version is the library's version string.
func Version() string { return C.GoString(C.sessync_version()) }

// GenerateID makes a fresh session id: 32 base64url characters of 192 random bits.
func GenerateID() (string, error) {
	var buf [C.SESSYNC_ID_MAX_LEN + 1]C.char
	var n C.size_t
	var e C.sessync_error
	if err := errorOf(C.sessync_id_generate(&buf[0], C.size_t(len(buf)), &n, &e), &e); err != nil {
		return "", err
	}
	return C.GoStringN(&buf[0], C.int(n)), nil
}

// CheckID says whether id is a well-formed session id (16 to 48 characters of
// A-Z a-z 0-9 - _): nil, or an ErrInvalidArgument with the reason.
func CheckID(id string) error {
	cid, err := cstr(id, "id")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(cid))
	var e C.sessync_error
	return errorOf(C.sessync_id_check(cid, &e), &e)
}

// Option is a store option for Open.
type Option func(*C.sessync_options, *C.sessync_error) C.sessync_status

// WithOption sets one sessync_options_set key: "cookie_name", "cookie_secure",
// "lock_wait", "ttl", "max_session_bytes", ... (see include/sessync.h).
func WithOption(key, value string) Option {
	return func(o *C.sessync_options, e *C.sessync_error) C.sessync_status {
		ck, err := cstr(key, "option name")
		if err != nil {
			return C.SESSYNC_STATUS_INVALID_ARGUMENT
		}
		defer C.free(unsafe.Pointer(ck))
		cv, err := cstr(value, "option value")
		if err != nil {
			return C.SESSYNC_STATUS_INVALID_ARGUMENT
		}
		defer C.free(unsafe.Pointer(cv))
		return C.sessync_options_set(o, ck, cv, e)
	}
}

// WithSigningKey adds a cookie signing key (16 to 1024 bytes; the first signs, all
// verify).
func WithSigningKey(key []byte) Option {
	return func(o *C.sessync_options, e *C.sessync_error) C.sessync_status {
		return C.sessync_options_add_signing_key(o, bytesPtr(key), C.size_t(len(key)), e)
	}
}

// Store is a session store: mem:// (this process), unix:// / tcp:// / tls:// (sessyncd)
// or redis://. Safe for concurrent use; open one per process.
type Store struct {
	mu  sync.RWMutex
	ptr *C.sessync_store
	url string
}

// Open opens a store from a URL such as "unix:///run/sessync.sock" or "mem://?ttl=30m".
func Open(url string, options ...Option) (*Store, error) {
	if v := uint32(C.sessync_version_number()); v != headerVersion {
		return nil, &Error{Status: StatusInvalidArgument, Message: fmt.Sprintf(
			"invalid argument: the library is version %d but the header is version %d", v, headerVersion)}
	}
	curl, err := cstr(url, "url")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(curl))
	var e C.sessync_error
	var opts *C.sessync_options
	if len(options) > 0 {
		if err := errorOf(C.sessync_options_new(&opts, &e), &e); err != nil {
			return nil, err
		}
		defer C.sessync_options_free(opts)
		for _, o := range options {
			if o == nil {
				continue
			}
			e = C.sessync_error{}
			rc := o(opts, &e)
			if rc != C.SESSYNC_STATUS_OK && e.status == 0 {
				return nil, &Error{Status: StatusInvalidArgument, Message: "invalid argument: an option contains a NUL byte"}
			}
			if err := errorOf(rc, &e); err != nil {
				return nil, err
			}
		}
	}
	var ptr *C.sessync_store
	if err := errorOf(C.sessync_store_open(curl, opts, &ptr, &e), &e); err != nil {
		return nil, err
	}
	st := &Store{ptr: ptr, url: url}
	runtime.SetFinalizer(st, (*Store).Close)
	return st, nil
}

// Close releases the store; calls in flight finish first, later ones get
// ErrStoreClosed. Sessions already begun keep working. Closing twice is fine.
func (st *Store) Close() error {
	if st == nil {
		return nil
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.ptr != nil {
		C.sessync_store_free(st.ptr)
		st.ptr = nil
	}
	return nil
}

// use runs f with the live handle (a nil *Store passes NULL: the engine's
// NULL_ARGUMENT error).
func (st *Store) use(f func(*C.sessync_store) error) error {
	if st == nil {
		return f(nil)
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.ptr == nil {
		return ErrStoreClosed
	}
	return f(st.ptr)
}

// DefaultWait, as a wait, means the store's lock_wait (10 s unless set).
const DefaultWait time.Duration = -1

// Begin starts a request from the raw Cookie header ("" without one): a visitor without
// a valid cookie naming a live session gets a fresh id. With lock, it takes the
// session's lock, waiting up to wait (DefaultWait: the store's lock_wait; 0: fail at
// once; under 1 ms: 1 ms), and fails with ErrLockTimeout past it. End the session with
// Commit or Abort.
func (st *Store) Begin(cookie string, lock bool, wait time.Duration) (*Session, error) {
	var sp *C.sessync_session
	cookieBytes := []byte(cookie)
	err := st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_begin(p, bytesPtr(cookieBytes), C.size_t(len(cookieBytes)),
			flags(lock), waitMS(wait), &sp, &e), &e)
	})
	if err != nil {
		return nil, err
	}
	return newSession(sp), nil
}

// BeginID starts a request on a session whose id the caller vouches for (a framework
// that issues its own cookies): an id naming no live session begins a new session under
// that id (IsNew), which has no lock to take. Commit never returns a cookie.
func (st *Store) BeginID(id string, lock bool, wait time.Duration) (*Session, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cid))
	var sp *C.sessync_session
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_begin_id(p, cid, flags(lock), waitMS(wait), &sp, &e), &e)
	})
	if err != nil {
		return nil, err
	}
	return newSession(sp), nil
}

func flags(lock bool) C.uint32_t {
	if lock {
		return C.SESSYNC_BEGIN_LOCK
	}
	return 0
}

// Fetch returns a session's data (a JSON object) and version; ErrNotFound when absent.
func (st *Store) Fetch(id string) (json.RawMessage, uint64, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return nil, 0, err
	}
	defer C.free(unsafe.Pointer(cid))
	var out []byte
	var version C.uint64_t
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		var b C.sessync_buf
		if err := errorOf(C.sessync_store_fetch(p, cid, &b, &version, &e), &e); err != nil {
			return err
		}
		out = takeBuf(&b)
		return nil
	})
	return out, uint64(version), err
}

// FetchRecord returns the whole record as JSON ({"id","data","version","created",
// "last_access","expires_at","owner","ttl"}); ErrNotFound when absent.
func (st *Store) FetchRecord(id string) (json.RawMessage, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return nil, err
	}
	defer C.free(unsafe.Pointer(cid))
	var out []byte
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		var b C.sessync_buf
		if err := errorOf(C.sessync_store_fetch_record(p, cid, &b, &e), &e); err != nil {
			return err
		}
		out = takeBuf(&b)
		return nil
	})
	return out, err
}

// Write replaces a session's data with data (marshalled to a JSON object), creating it
// if absent; the new version.
func (st *Store) Write(id string, data any) (uint64, error) {
	js, err := json.Marshal(data)
	if err != nil {
		return 0, err
	}
	cid, err := cstr(id, "id")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cid))
	var version C.uint64_t
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_write(p, cid, bytesPtr(js), C.size_t(len(js)), nil, 0, 0, &version, &e), &e)
	})
	return uint64(version), err
}

// Patch applies a JSON Merge Patch (marshalled to a JSON object; null deletes a key)
// atomically, creating the session if absent; the new version.
func (st *Store) Patch(id string, patch any) (uint64, error) {
	js, err := json.Marshal(patch)
	if err != nil {
		return 0, err
	}
	cid, err := cstr(id, "id")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cid))
	var version C.uint64_t
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_patch(p, cid, bytesPtr(js), C.size_t(len(js)), 0, C.SESSYNC_WRITE_CREATE, &version, &e), &e)
	})
	return uint64(version), err
}

// Incr adds by to the integer at key atomically (absent counts as 0, an absent session
// is created); the sum.
func (st *Store) Incr(id, key string, by int64) (int64, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(cid))
	ckey, err := cstr(key, "key")
	if err != nil {
		return 0, err
	}
	defer C.free(unsafe.Pointer(ckey))
	var v C.int64_t
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_incr(p, cid, ckey, C.int64_t(by), 0, C.SESSYNC_WRITE_CREATE, &v, &e), &e)
	})
	return int64(v), err
}

// Touch records an access and gives the session its own idle TTL (ttl > 0), or records
// an access as the store's touch interval allows (ttl 0); whether it wrote. A ttl under
// 1 ms is 1 ms.
func (st *Store) Touch(id string, ttl time.Duration) (bool, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return false, err
	}
	defer C.free(unsafe.Pointer(cid))
	var written C.bool
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		if ttl > 0 {
			return errorOf(C.sessync_store_touch_ttl(p, cid, C.uint64_t(millis(ttl)), &written, &e), &e)
		}
		return errorOf(C.sessync_store_touch(p, cid, &written, &e), &e)
	})
	return bool(written), err
}

// Destroy destroys a session (tombstoned: requests in flight cannot bring it back);
// whether it existed.
func (st *Store) Destroy(id string) (bool, error) {
	cid, err := cstr(id, "id")
	if err != nil {
		return false, err
	}
	defer C.free(unsafe.Pointer(cid))
	var existed C.bool
	err = st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_destroy(p, cid, &existed, &e), &e)
	})
	return bool(existed), err
}

// IDs lists the ids of the live sessions (SCAN-like pages; Redis may repeat one).
func (st *Store) IDs() ([]string, error) {
	var ids []string
	var cursor C.uint64_t
	for {
		var page []string
		var next C.uint64_t
		err := st.use(func(p *C.sessync_store) error {
			var e C.sessync_error
			var b C.sessync_buf
			if err := errorOf(C.sessync_store_list(p, cursor, 256, &b, &next, &e), &e); err != nil {
				return err
			}
			return json.Unmarshal(takeBuf(&b), &page)
		})
		if err != nil {
			return nil, err
		}
		ids = append(ids, page...)
		if next == 0 {
			return ids, nil
		}
		cursor = next
	}
}

// Clear destroys every session; how many.
func (st *Store) Clear() (int, error) {
	var n C.size_t
	err := st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_clear(p, &n, &e), &e)
	})
	return int(n), err
}

// Stats are the store's counters.
type Stats struct {
	Sessions, Tombstones, Aliases, Operations, LockWaits, LockTimeouts, Expirations, Evictions uint64
}

// Stats returns the store's counters.
func (st *Store) Stats() (Stats, error) {
	var s C.sessync_stats
	err := st.use(func(p *C.sessync_store) error {
		var e C.sessync_error
		return errorOf(C.sessync_store_stats(p, &s, C.size_t(unsafe.Sizeof(s)), &e), &e)
	})
	return Stats{uint64(s.sessions), uint64(s.tombstones), uint64(s.aliases), uint64(s.operations),
		uint64(s.lock_waits), uint64(s.lock_timeouts), uint64(s.expirations), uint64(s.evictions)}, err
}
