package sessync_test

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"sessync.dev/sessync"
)

// The method set of scs's Store and IterableStore interfaces (alexedwards/scs/v2).
type scsStore interface {
	Find(token string) (b []byte, found bool, err error)
	Commit(token string, b []byte, expiry time.Time) error
	Delete(token string) error
}

type scsIterableStore interface {
	All() (map[string][]byte, error)
}

var (
	_ scsStore         = (*sessync.SCSStore)(nil)
	_ scsIterableStore = (*sessync.SCSStore)(nil)
)

func TestSCSStore(t *testing.T) {
	st := openMem(t)
	var store scsStore = sessync.NewSCSStore(st)
	token := "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ" // 43 base64url characters, as scs makes
	if _, found, err := store.Find(token); found || err != nil {
		t.Fatalf("absent: %v %v", found, err)
	}
	if _, found, err := store.Find("not a token!"); found || err != nil {
		t.Fatalf("garbage: %v %v", found, err)
	}
	blob := []byte{0x0d, 0xff, 0x00, 'g', 'o', 'b'}
	if err := store.Commit(token, blob, time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b, found, err := store.Find(token)
	if err != nil || !found || string(b) != string(blob) {
		t.Fatalf("find: %q %v %v", b, found, err)
	}
	rec, _ := st.FetchRecord(token)
	if len(rec) == 0 {
		t.Fatal("no record")
	}
	all, err := store.(scsIterableStore).All()
	if err != nil || len(all) != 1 || string(all[token]) != string(blob) {
		t.Fatalf("all: %v %v", all, err)
	}
	if err := store.Commit(token, []byte("v2"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b, _, _ := store.Find(token); string(b) != "v2" {
		t.Fatalf("overwrite: %q", b)
	}
	if err := store.Delete(token); err != nil {
		t.Fatal(err)
	}
	if _, found, _ := store.Find(token); found {
		t.Fatal("deleted")
	}
	// An expiry in the past deletes; a short one expires by itself.
	store.Commit(token, []byte("x"), time.Now().Add(-time.Second))
	if _, found, _ := store.Find(token); found {
		t.Fatal("expired commit")
	}
	// The session's own TTL is the time left until scs's expiry.
	other := "QPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba"
	if err := store.Commit(other, []byte("x"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, err = st.FetchRecord(other)
	var r struct{ TTL int64 }
	if err != nil || json.Unmarshal(rec, &r) != nil || r.TTL <= 3590000 || r.TTL > 3600000 {
		t.Fatalf("ttl: %s %v", rec, err)
	}
	// A closed store's error is returned, not a panic.
	st.Close()
	if err := store.Commit(token, []byte("x"), time.Now().Add(time.Hour)); !errors.Is(err, sessync.ErrStoreClosed) {
		t.Fatalf("closed: %v", err)
	}
}
