package lifecycle

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeBootstrap connects to the control socket like the bootstrap does;
// bind says whether it binds the worker socket (a node:http server), and
// readyFirst whether it says "ready" by itself (Deno.serve's onListen).
// It answers "serving" with "ready" unless it has said it already, and
// reports every line it got from the gateway.
func fakeBootstrap(t *testing.T, ctlPath, sock string, bind, readyFirst bool, got chan<- string) {
	c, err := net.Dial("unix", ctlPath)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close()
	if bind {
		ln, err := net.Listen("unix", sock)
		if err != nil {
			t.Error(err)
			return
		}
		defer ln.Close()
	}
	ready := readyFirst
	if readyFirst {
		c.Write([]byte("ready\n"))
	}
	c.SetReadDeadline(time.Now().Add(eventWait))
	br := bufio.NewReader(c)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			close(got)
			return
		}
		got <- strings.TrimSuffix(line, "\n")
		if line == "serving\n" && !ready {
			ready = true
			c.Write([]byte("ready\n"))
		}
	}
}

func TestHandshakeReadyWhenTheSocketIsBound(t *testing.T) {
	for _, tc := range []struct {
		name             string
		bind, readyFirst bool
		ok               bool
	}{
		{"node:http server", true, false, true},
		{"Deno.serve", true, true, true},
		{"never serves", false, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctlPath, sock := dir+"/c.sock", dir+"/w.sock"
			ln, err := net.Listen("unix", ctlPath)
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			got := make(chan string, 16)
			go fakeBootstrap(t, ctlPath, sock, tc.bind, tc.readyFirst, got)
			p := &process{sock: sock, exited: make(chan struct{})}
			deadline := time.Now().Add(eventWait)
			if !tc.ok {
				deadline = time.Now().Add(200 * time.Millisecond)
			}
			err = p.handshake(ln.(*net.UnixListener), deadline)
			if (err == nil) != tc.ok {
				t.Fatalf("handshake: %v, want ok %v", err, tc.ok)
			}
			if p.ctl == nil {
				return
			}
			// Nothing but "ready" came before: the next line is the
			// worker's next message, not a second "ready".
			p.ctl.Close()
			for line := range got {
				if line != "serving" {
					t.Errorf("the gateway sent %q", line)
				}
			}
		})
	}
}
