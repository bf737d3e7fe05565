package sessync_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sessync.dev/sessync"
)

func TestMain(m *testing.M) {
	if url := os.Getenv("SESSYNC_GO_CHILD_URL"); url != "" {
		runChild(url) // a worker process of TestProcessesOneVisitorLoseNothing
		return
	}
	os.Exit(m.Run())
}

// waitFor polls cond until it holds, failing the test past the deadline.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// startSessyncd starts sessyncd on a Unix socket in a temporary directory and returns
// the store URL; the daemon is stopped when the test ends, whatever happens.
func startSessyncd(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("SESSYNCD")
	if bin == "" {
		bin = filepath.Join("..", "..", "target", "release", "sessyncd")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("sessyncd not found at %s (cargo build --release --bin sessyncd): %v", bin, err)
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "sessyncd.sock")
	cmd := exec.Command(bin, "--unix", sock)
	var logs strings.Builder
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	waitFor(t, "sessyncd", 30*time.Second, func() bool {
		select {
		case <-exited:
			t.Fatalf("sessyncd exited: %s", logs.String())
		default:
		}
		c, err := net.Dial("unix", sock)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
	return "unix://" + sock
}

// startWorker starts this test binary as a worker process serving the example handler
// on its own port, with its own store on url; it is stopped when the test ends.
func startWorker(t *testing.T, url string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SESSYNC_GO_CHILD_URL="+url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdin, err := cmd.StdinPipe() // the worker exits when it closes
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("the worker process printed no address")
		}
		return a
	case <-time.After(60 * time.Second):
		t.Fatal("timed out waiting for a worker process")
	}
	return ""
}

// runChild is a worker process: its own store on the shared sessyncd, the example's
// handler behind the middleware, on a port of its own that it prints.
func runChild(url string) {
	store, err := sessync.Open(url)
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		os.Exit(1)
	}
	fmt.Printf("LISTEN %s\n", ln.Addr())
	go func() {
		_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // EOF: the test is over
		os.Exit(0)
	}()
	_ = serveExample(ln, store)
}
