package ratestore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// eventTimeout bounds waiting for something that must happen; generous,
// as the test machine is busy.
const eventTimeout = 30 * time.Second

// redisServer is a real redis-server on a loopback port, owned by a test.
type redisServer struct {
	port  int
	extra []string
	dir   string
	cmd   *exec.Cmd
}

// startRedis starts redis-server (skipping the test when it is not
// installed) and stops it when the test ends.
func startRedis(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (.ci/run installs it from apt)")
	}
	r := &redisServer{extra: extra, dir: t.TempDir()}
	var err error
	for range 5 { // a port picked free may be taken before redis binds it
		if r.port, err = freePort(); err != nil {
			t.Fatal(err)
		}
		if err = r.run(); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.stop() })
	return r
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// run starts the server on r.port and waits until it answers PING.
func (r *redisServer) run() error {
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", r.dir}, r.extra...)
	cmd := exec.Command("redis-server", args...)
	logf, err := os.Create(filepath.Join(r.dir, "redis.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start redis-server: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	c := redis.NewClient(&redis.Options{Addr: r.addr(), MaxRetries: -1, DisableIdentity: true, Password: r.password()})
	defer c.Close()
	deadline := time.Now().Add(eventTimeout)
	for {
		select {
		case err := <-exited:
			out, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			return fmt.Errorf("redis-server exited (%v): %s", err, out)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			r.cmd = cmd
			go func() { <-exited }()
			return nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			return fmt.Errorf("redis-server on %s did not answer within %v: %w", r.addr(), eventTimeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisServer) password() string {
	for i, a := range r.extra {
		if a == "--requirepass" && i+1 < len(r.extra) {
			return r.extra[i+1]
		}
	}
	return ""
}

func (r *redisServer) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port)) }

func (r *redisServer) url() string { return "redis://" + r.addr() + "/0" }

// stop kills the server and waits until its port refuses connections.
func (r *redisServer) stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd = nil
	deadline := time.Now().Add(eventTimeout)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", r.addr(), time.Second)
		if err != nil {
			return
		}
		c.Close()
		time.Sleep(20 * time.Millisecond)
	}
}

// restart starts the server again on the same port.
func (r *redisServer) restart(t *testing.T) {
	t.Helper()
	var err error
	for range 50 { // the old socket may linger a moment
		if err = r.run(); err == nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal(err)
}

// client is a plain go-redis client to the server, for inspecting keys.
func (r *redisServer) client(t testing.TB) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: r.addr(), DisableIdentity: true, Password: r.password()})
	t.Cleanup(func() { c.Close() })
	return c
}
