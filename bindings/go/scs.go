package sessync

import (
	"errors"
	"time"
)

// SCSStore is a store of the shape of scs's Store interface (alexedwards/scs/v2:
// Find, Commit, Delete; and All, its IterableStore), on a sessync store:
//
//	sessionManager.Store = sessync.NewSCSStore(store)
//
// scs hands its stores whole encoded sessions, so Commit writes the whole blob:
// last-write-wins between concurrent requests of one visitor, as with scs's own Redis
// store (use Middleware for per-key writes under the session's lock). Each scs token
// (43 base64url characters) is the sessync id; the blob is kept as opaque bytes under
// one key, and the session's own TTL is the time left until the expiry scs gives.
type SCSStore struct {
	Store *Store
	// Key is the key the blob is kept under ("scs" when empty).
	Key string
}

// NewSCSStore returns an SCSStore on st.
func NewSCSStore(st *Store) *SCSStore { return &SCSStore{Store: st} }

func (s *SCSStore) key() string {
	if s.Key == "" {
		return "scs"
	}
	return s.Key
}

// Find returns the blob of token; found is false for an absent or expired session,
// and for a token that is not a well-formed id (a client's garbage is not an error).
func (s *SCSStore) Find(token string) ([]byte, bool, error) {
	if CheckID(token) != nil {
		return nil, false, nil
	}
	sess, err := s.Store.BeginID(token, false, 0)
	if err != nil {
		return nil, false, err
	}
	defer sess.Abort()
	if sess.IsNew() {
		return nil, false, nil
	}
	b, err := sess.GetBytes(s.key())
	if errors.Is(err, ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return b, true, nil
}

// Commit stores b under token until expiry (the whole blob; see SCSStore). An expiry
// already past deletes the session.
func (s *SCSStore) Commit(token string, b []byte, expiry time.Time) error {
	ttl := time.Until(expiry)
	if ttl < time.Millisecond {
		return s.Delete(token)
	}
	sess, err := s.Store.BeginID(token, true, DefaultWait)
	if err != nil {
		return err
	}
	if err := sess.SetBytes(s.key(), b); err != nil {
		sess.Abort()
		return err
	}
	if err := sess.SetTTL(ttl); err != nil {
		sess.Abort()
		return err
	}
	_, err = sess.Commit()
	return err
}

// Delete destroys the session of token (absent is fine).
func (s *SCSStore) Delete(token string) error {
	if CheckID(token) != nil {
		return nil
	}
	_, err := s.Store.Destroy(token)
	return err
}

// All returns every live session's blob by token (scs's IterableStore); sessions
// without a blob under Key are left out.
func (s *SCSStore) All() (map[string][]byte, error) {
	ids, err := s.Store.IDs()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]byte, len(ids))
	for _, id := range ids {
		b, found, err := s.Find(id)
		if err != nil {
			return nil, err
		}
		if found {
			out[id] = b
		}
	}
	return out, nil
}
