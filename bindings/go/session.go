package sessync

/*
#include <stdlib.h>
#include "sessync.h"
*/
import "C"

import (
	"encoding/json"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// Session is one request's view of a session (Store.Begin, Store.BeginID): its changes
// are recorded per key in the engine and written by Commit as one atomic patch. Safe for
// use by several goroutines (calls are serialized); after Commit or Abort every call
// returns ErrSessionCommitted or ErrSessionAborted. A Session that is garbage collected
// without Commit or Abort is aborted (its lock released).
type Session struct {
	mu    sync.Mutex
	ptr   *C.sessync_session
	ended error
	id    string
}

func newSession(p *C.sessync_session) *Session {
	s := &Session{ptr: p}
	runtime.SetFinalizer(s, func(s *Session) {
		if s.ptr != nil {
			C.sessync_session_free(s.ptr)
			s.ptr = nil
		}
	})
	return s
}

// use runs f with the live handle (a nil *Session passes NULL: the engine's
// NULL_ARGUMENT error).
func (s *Session) use(f func(*C.sessync_session) error) error {
	if s == nil {
		return f(nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return s.ended
	}
	return f(s.ptr)
}

// ID is the session's id (it changes with Rotate; after the end, the id it ended with).
func (s *Session) ID() string {
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return s.id
	}
	return C.GoString(C.sessync_session_id(s.ptr))
}

func (s *Session) getter(f func(*C.sessync_session)) {
	_ = s.use(func(p *C.sessync_session) error { f(p); return nil })
}

// IsNew says whether begin found no stored session (false once ended).
func (s *Session) IsNew() (v bool) {
	s.getter(func(p *C.sessync_session) { v = bool(C.sessync_session_is_new(p)) })
	return
}

// Changed says whether the request changed something Commit would write.
func (s *Session) Changed() (v bool) {
	s.getter(func(p *C.sessync_session) { v = bool(C.sessync_session_changed(p)) })
	return
}

// Version is the session's version as begin found it (0 for a new one).
func (s *Session) Version() (v uint64) {
	s.getter(func(p *C.sessync_session) { v = uint64(C.sessync_session_version(p)) })
	return
}

// Token is the fencing token of the lock the session holds (0 without one).
func (s *Session) Token() (v uint64) {
	s.getter(func(p *C.sessync_session) { v = uint64(C.sessync_session_token(p)) })
	return
}

func withKey(key string, f func(*C.char) error) error {
	ck, err := cstr(key, "key")
	if err != nil {
		return err
	}
	defer C.free(unsafe.Pointer(ck))
	return f(ck)
}

// GetJSON returns the JSON at key (this request's changes applied); ErrNotFound when
// absent.
func (s *Session) GetJSON(key string) (json.RawMessage, error) {
	var out []byte
	err := withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			var b C.sessync_buf
			if err := errorOf(C.sessync_session_get(p, ck, &b, &e), &e); err != nil {
				return err
			}
			out = takeBuf(&b)
			return nil
		})
	})
	return out, err
}

// Get unmarshals the value at key into v (encoding/json); found is false, and v
// untouched, when the key is absent.
func (s *Session) Get(key string, v any) (found bool, err error) {
	js, err := s.GetJSON(key)
	if err != nil {
		if e, ok := err.(*Error); ok && e.Status == StatusNotFound {
			return false, nil
		}
		return false, err
	}
	return true, json.Unmarshal(js, v)
}

// Int returns the integer at key (0 when absent); ErrNotANumber when it is not one.
func (s *Session) Int(key string) (int64, error) {
	var v C.int64_t
	err := withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			return errorOf(C.sessync_session_get_i64(p, ck, &v, &e), &e)
		})
	})
	if e, ok := err.(*Error); ok && e.Status == StatusNotFound {
		return 0, nil
	}
	return int64(v), err
}

// SetJSON sets key to the JSON value js (the engine checks it: ErrInvalidJSON).
func (s *Session) SetJSON(key string, js []byte) error {
	return withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			return errorOf(C.sessync_session_set(p, ck, bytesPtr(js), C.size_t(len(js)), &e), &e)
		})
	})
}

// Set sets key to v, marshalled with encoding/json (its errors are returned as they are).
func (s *Session) Set(key string, v any) error {
	js, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return s.SetJSON(key, js)
}

// Remove removes key (absent is fine).
func (s *Session) Remove(key string) error {
	return withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			return errorOf(C.sessync_session_remove(p, ck, &e), &e)
		})
	})
}

// Incr adds by to the integer at key (absent counts as 0): an atomic increment at
// Commit, so concurrent requests' increments all count. The value as this request sees
// it (exact under the lock).
func (s *Session) Incr(key string, by int64) (int64, error) {
	var v C.int64_t
	err := withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			return errorOf(C.sessync_session_incr(p, ck, C.int64_t(by), &v, &e), &e)
		})
	})
	return int64(v), err
}

// Data returns all of the data (this request's changes applied), each value as JSON.
func (s *Session) Data() (map[string]json.RawMessage, error) {
	var out []byte
	err := s.use(func(p *C.sessync_session) error {
		var e C.sessync_error
		var b C.sessync_buf
		if err := errorOf(C.sessync_session_data(p, &b, &e), &e); err != nil {
			return err
		}
		out = takeBuf(&b)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := map[string]json.RawMessage{}
	return m, json.Unmarshal(out, &m)
}

// GetBytes returns the opaque bytes at key (SetBytes); ErrNotFound when absent.
func (s *Session) GetBytes(key string) ([]byte, error) {
	var out []byte
	err := withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			var b C.sessync_buf
			if err := errorOf(C.sessync_session_get_bytes(p, ck, &b, &e), &e); err != nil {
				return err
			}
			out = takeBuf(&b)
			if out == nil {
				out = []byte{}
			}
			return nil
		})
	})
	return out, err
}

// SetBytes sets key to opaque bytes (kept as a JSON string when UTF-8, else base64).
func (s *Session) SetBytes(key string, b []byte) error {
	return withKey(key, func(ck *C.char) error {
		return s.use(func(p *C.sessync_session) error {
			var e C.sessync_error
			return errorOf(C.sessync_session_set_bytes(p, ck, bytesPtr(b), C.size_t(len(b)), &e), &e)
		})
	})
}

// SetTTL gives the session its own idle TTL (1 ms to one year; under 1 ms is 1 ms),
// applied at Commit.
func (s *Session) SetTTL(ttl time.Duration) error {
	if ttl < 0 {
		ttl = 0 // the engine refuses it with its own message
	}
	return s.use(func(p *C.sessync_session) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_set_ttl(p, C.uint64_t(millis(ttl)), &e), &e)
	})
}

// SetOwner sets the session's owner (e.g. the user id at login); "" clears it.
func (s *Session) SetOwner(owner string) error {
	var co *C.char
	if owner != "" {
		var err error
		if co, err = cstr(owner, "owner"); err != nil {
			return err
		}
		defer C.free(unsafe.Pointer(co))
	}
	return s.use(func(p *C.sessync_session) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_set_owner(p, co, &e), &e)
	})
}

// Rotate gives the session a fresh id now (at login, against session fixation); data,
// owner and lock move with it, and Commit sends the new cookie. The new id.
func (s *Session) Rotate() (string, error) {
	var id string
	err := s.use(func(p *C.sessync_session) error {
		var e C.sessync_error
		if err := errorOf(C.sessync_session_rotate(p, &e), &e); err != nil {
			return err
		}
		id = C.GoString(C.sessync_session_id(p))
		return nil
	})
	return id, err
}

// Destroy marks the session for destruction at Commit (logout): Commit then returns a
// removal cookie.
func (s *Session) Destroy() error {
	return s.use(func(p *C.sessync_session) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_destroy(p, &e), &e)
	})
}

// end consumes the handle: after it, calls return ended.
func (s *Session) end(ended error, f func(*C.sessync_session) error) error {
	if s == nil {
		return f(nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended != nil {
		return s.ended
	}
	p := s.ptr
	s.id = C.GoString(C.sessync_session_id(p))
	s.ptr = nil
	s.ended = ended
	return f(p)
}

// Commit ends the request: writes what changed as one atomic patch (or destroys),
// releases the lock, and returns the Set-Cookie header value ("" when none is needed).
// The session is ended even when it fails: ErrStaleToken (the lock's lease ran out and
// another request took it: nothing written), ErrDestroyed, ErrNotFound (expired
// meanwhile).
func (s *Session) Commit() (setCookie string, err error) {
	err = s.end(ErrSessionCommitted, func(p *C.sessync_session) error {
		var e C.sessync_error
		var b C.sessync_buf
		if err := errorOf(C.sessync_session_commit(p, &b, &e), &e); err != nil {
			return err
		}
		setCookie = string(takeBuf(&b))
		return nil
	})
	return setCookie, err
}

// Abort ends the request without writing and releases the lock.
func (s *Session) Abort() error {
	return s.end(ErrSessionAborted, func(p *C.sessync_session) error {
		var e C.sessync_error
		return errorOf(C.sessync_session_abort(p, &e), &e)
	})
}

// Ended says whether Commit or Abort was called.
func (s *Session) Ended() bool {
	if s == nil {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ended != nil
}
