// A net/http server whose sessions live in sessync: run several of them on one sessyncd
// and a visitor's count goes on across them.
//
//	target/release/sessyncd --unix /tmp/sessync.sock &
//	SESSYNC_URL=unix:///tmp/sessync.sock go run ./bindings/go/examples/server -addr 127.0.0.1:8081
package main

import (
	"flag"
	"fmt"
	"log"
	"net/http"
	"os"

	"sessync.dev/sessync"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "address to listen on")
	flag.Parse()
	url := os.Getenv("SESSYNC_URL")
	if url == "" {
		url = "mem://"
	}
	store, err := sessync.Open(url, sessync.WithOption("cookie_name", "sid"))
	if err != nil {
		log.Fatal(err) // e.g. invalid argument: store URL scheme "bogus" is not supported (…)
	}
	defer store.Close()

	http.Handle("/", store.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s := sessync.FromContext(r.Context()) // begun with the session's lock
		visits, err := s.Incr("visits", 1)    // an atomic increment at commit
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "process %d: visits %d\n", os.Getpid(), visits) // commits, then writes
	})))
	log.Fatal(http.ListenAndServe(*addr, nil))
}
