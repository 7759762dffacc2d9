package e2e

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// versionFolder is a function answering its version, kept warm.
func versionFolder(v string) map[string]string {
	return map[string]string{
		"hello/index.ts":      `Deno.serve(() => new Response("` + v + `"));`,
		"hello/function.json": `{"minWorkers": 1}`,
	}
}

// buildPackage builds files into an artifact and packs it to out, signed
// with signKey when not "".
func buildPackage(t *testing.T, files map[string]string, out, signKey string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "functions")
	writeTree(t, dir, files)
	dist := filepath.Join(t.TempDir(), "dist")
	if log, err := runBin(t, "build", "--functions", dir, "--out", dist, "--deno", denoPath(t)); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	args := []string{"package", "--from", dist, "--out", out}
	if signKey != "" {
		args = append(args, "--sign-key", signKey)
	}
	if log, err := runBin(t, args...); err != nil {
		t.Fatalf("package: %v\n%s", err, log)
	}
}

func keygenPair(t *testing.T, name string) (priv, pub string) {
	t.Helper()
	priv = filepath.Join(t.TempDir(), name)
	if log, err := runBin(t, "keygen", "--out", priv); err != nil {
		t.Fatalf("keygen: %v\n%s", err, log)
	}
	return priv, priv + ".pub"
}

// waitBody polls path until it answers want (the reload is asynchronous
// to a signal).
func waitBody(t *testing.T, g *Gateway, path, want string) {
	t.Helper()
	deadline := time.Now().Add(eventTimeout)
	for {
		r := g.Get(path)
		if r.Status == 200 && string(r.Body) == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never answered %q (last %d %q)", path, want, r.Status, r.Body)
		}
		sleepPoll()
	}
}

// TestPrebuiltPackageSignature: a package signed with another key, or not
// signed, is refused when a verify key is given; the right one serves, and
// SIGHUP reloads to a new package at the same path (a tampered one is
// refused and the running version kept).
func TestPrebuiltPackageSignature(t *testing.T) {
	privA, pubA := keygenPair(t, "a.key")
	privB, _ := keygenPair(t, "b.key")
	dir := t.TempDir()
	signedB, unsigned, app := filepath.Join(dir, "b.edgeway"), filepath.Join(dir, "u.edgeway"), filepath.Join(dir, "app.edgeway")
	buildPackage(t, versionFolder("v1"), signedB, privB)
	buildPackage(t, versionFolder("v1"), unsigned, "")
	buildPackage(t, versionFolder("v1"), app, privA)

	for pkg, want := range map[string]string{signedB: "does not verify with the verify key", unsigned: "not signed"} {
		g := launch(t, t.TempDir(), "--prebuilt", pkg, "--verify-key", pubA)
		if code := g.WaitExit(); code == 0 {
			t.Fatalf("%s was served", filepath.Base(pkg))
		}
		if !strings.Contains(g.logs.text(), want) {
			t.Fatalf("%s: the refusal does not say %q:\n%s", filepath.Base(pkg), want, g.logs.text())
		}
	}

	g := launch(t, t.TempDir(), "--prebuilt", app, "--verify-key", pubA)
	if err := g.waitListening(); err != nil {
		t.Fatalf("signed package not served: %v\n%s", err, g.logs.text())
	}
	waitBody(t, g, "/hello", "v1")
	buildPackage(t, versionFolder("v2"), app, privA)
	g.Signal(syscall.SIGHUP)
	waitBody(t, g, "/hello", "v2")

	// A package signed with the wrong key is refused on reload; v2 stays.
	buildPackage(t, versionFolder("v3"), app, privB)
	g.Signal(syscall.SIGHUP)
	g.WaitLog(func(l logLine) bool {
		return l.Msg() == "reload refused: the running functions are kept" && strings.Contains(l.Str("error"), "does not verify")
	})
	if r := g.Get("/hello"); string(r.Body) != "v2" {
		t.Fatalf("after a refused reload: %d %q", r.Status, r.Body)
	}
}

// loadResult is one request of the fixed-rate load.
type loadResult struct {
	status int
	body   string
	err    error
}

// fixedRateLoad sends GET path every interval until stop is closed and
// returns every outcome; done counts the answered requests meanwhile.
func fixedRateLoad(url string, interval time.Duration, stop <-chan struct{}, done *atomic.Int64) <-chan []loadResult {
	out := make(chan []loadResult, 1)
	go func() {
		client := &http.Client{Timeout: eventTimeout}
		var mu sync.Mutex
		var wg sync.WaitGroup
		var results []loadResult
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				wg.Wait()
				out <- results
				return
			case <-tick.C:
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				res := loadResult{}
				resp, err := client.Get(url)
				if err == nil {
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					res.status, res.body = resp.StatusCode, string(b)
				}
				res.err = err
				mu.Lock()
				results = append(results, res)
				mu.Unlock()
				done.Add(1)
			}()
		}
	}()
	return out
}

func adminDo(t *testing.T, method, url, key string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, bytes.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := (&http.Client{Timeout: eventTimeout * 2}).Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestPrebuiltDeployUnderLoad deploys a new version over the admin
// listener while a client sends requests at a fixed rate: none fails, the
// new version answers once the deploy returns, a rollback restores the
// old answers, refused uploads change nothing, and a restart serves the
// last deployed version.
func TestPrebuiltDeployUnderLoad(t *testing.T) {
	priv, pub := keygenPair(t, "ci.key")
	privOther, _ := keygenPair(t, "other.key")
	dir := t.TempDir()
	v1, v2, forged := filepath.Join(dir, "v1.edgeway"), filepath.Join(dir, "v2.edgeway"), filepath.Join(dir, "forged.edgeway")
	buildPackage(t, versionFolder("v1"), v1, priv)
	buildPackage(t, versionFolder("v2"), v2, priv)
	buildPackage(t, versionFolder("forged"), forged, privOther)
	state := filepath.Join(t.TempDir(), "state")
	const key = "deploy-key-for-tests-0123456789"
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	args := []string{"--prebuilt", v1, "--verify-key", pub, "--state-dir", state, "--deploy-key", key, "--admin-listen", admin}
	g := launch(t, t.TempDir(), args...)
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	waitBody(t, g, "/hello", "v1")
	deployURL := "http://" + admin + "/deploy"
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// A large upload without the key is refused before its body is read.
	if status := rawStatus(t, admin, "POST /deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer wrong\r\nContent-Length: 100000000\r\n\r\n"+strings.Repeat("x", 64<<10)); status != "401" {
		t.Fatalf("a large upload without the key: %s", status)
	}
	if status, _ := adminDo(t, "POST", deployURL, "wrong", read(v2)); status != 401 {
		t.Fatalf("wrong deploy key: %d", status)
	}
	if status := rawStatus(t, admin, "POST /deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+key+"\r\nContent-Length: 300000000\r\n\r\n"+strings.Repeat("x", 64<<10)); status != "413" {
		t.Fatalf("a declared length over --artifact-max-bytes: %s", status)
	}
	if status, body := adminDo(t, "POST", deployURL, key, read(forged)); status != 422 || !strings.Contains(body, "does not verify") {
		t.Fatalf("package signed with another key: %d %s", status, body)
	}
	if r := g.Get("/hello"); string(r.Body) != "v1" {
		t.Fatalf("a refused deploy changed the answer: %q", r.Body)
	}

	stop := make(chan struct{})
	var answered atomic.Int64
	results := fixedRateLoad(g.URL+"/hello", 10*time.Millisecond, stop, &answered)
	// Load runs before, between and after the swaps.
	waitAnswered := func(n int64) {
		deadline := time.Now().Add(eventTimeout)
		for answered.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("the load got fewer than %d answers", n)
			}
			sleepPoll()
		}
	}
	waitAnswered(20)
	if status, body := adminDo(t, "POST", deployURL, key, read(v2)); status != 200 {
		t.Fatalf("deploy: %d %s", status, body)
	}
	if r := g.Get("/hello"); string(r.Body) != "v2" {
		t.Fatalf("after the deploy returned: %q", r.Body)
	}
	status, body := adminDo(t, "GET", deployURL, key, nil)
	if status != 200 || !strings.Contains(body, `"previous":[{`) {
		t.Fatalf("deploy state: %d %s", status, body)
	}
	waitAnswered(answered.Load() + 20)
	if status, body := adminDo(t, "POST", deployURL+"/rollback", key, nil); status != 200 {
		t.Fatalf("rollback: %d %s", status, body)
	}
	if r := g.Get("/hello"); string(r.Body) != "v1" {
		t.Fatalf("after the rollback returned: %q", r.Body)
	}
	waitAnswered(answered.Load() + 20)
	close(stop)
	all := <-results
	seen := map[string]int{}
	for _, r := range all {
		if r.err != nil || r.status != 200 {
			t.Errorf("a request failed during deploy and rollback: %d %v %q", r.status, r.err, r.body)
			continue
		}
		seen[r.body]++
	}
	t.Logf("%d requests during deploy and rollback: %v", len(all), seen)
	if seen["v2"] == 0 || seen["v1"] == 0 || len(seen) != 2 {
		t.Errorf("answers during the swaps: %v", seen)
	}

	// Deploy v2 again: a restart serves it.
	if status, body := adminDo(t, "POST", deployURL, key, read(v2)); status != 200 {
		t.Fatalf("deploy: %d %s", status, body)
	}
	g.Signal(syscall.SIGTERM)
	g.WaitExit()
	g2 := launch(t, t.TempDir(), args...)
	if err := g2.waitListening(); err != nil {
		t.Fatalf("restart: %v\n%s", err, g2.logs.text())
	}
	if r := g2.Get("/hello"); string(r.Body) != "v2" {
		t.Fatalf("a restart serves %q, not the last deployed version", r.Body)
	}
}

// rawStatus sends raw request bytes and returns the response's status code.
func rawStatus(t *testing.T, addr, request string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, eventTimeout)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(eventTimeout))
	if _, err := c.Write([]byte(request)); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the answer: %v", err)
	}
	fields := strings.Fields(line)
	if len(fields) < 2 {
		t.Fatalf("status line %q", line)
	}
	return fields[1]
}

// TestPrebuiltWatchReloadsChangedArtifact: with --watch, a package
// replaced at the --prebuilt path, or an artifact folder rebuilt in place,
// is reloaded as a changed folder is.
func TestPrebuiltWatchReloadsChangedArtifact(t *testing.T) {
	dir := t.TempDir()
	app := filepath.Join(dir, "app.edgeway")
	buildPackage(t, versionFolder("v1"), app, "")
	g := launch(t, t.TempDir(), "--prebuilt", app, "--watch=true")
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	waitBody(t, g, "/hello", "v1")
	buildPackage(t, versionFolder("v2"), app, "")
	waitBody(t, g, "/hello", "v2")

	src := filepath.Join(t.TempDir(), "functions")
	writeTree(t, src, versionFolder("d1"))
	dist := filepath.Join(t.TempDir(), "dist")
	if log, err := runBin(t, "build", "--functions", src, "--out", dist, "--deno", denoPath(t)); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	g2 := launch(t, t.TempDir(), "--prebuilt", dist, "--watch=true")
	if err := g2.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g2.logs.text())
	}
	waitBody(t, g2, "/hello", "d1")
	writeTree(t, src, versionFolder("d2"))
	if log, err := runBin(t, "build", "--functions", src, "--out", dist, "--deno", denoPath(t)); err != nil {
		t.Fatalf("build: %v\n%s", err, log)
	}
	waitBody(t, g2, "/hello", "d2")
}

// TestPrebuiltDeployStreamsUploads: an upload is read as a stream (a
// complete package answers at once even if the declared length is never
// reached) and a stalled one is refused after --deploy-read-timeout,
// releasing the deploy slot.
func TestPrebuiltDeployStreamsUploads(t *testing.T) {
	files := versionFolder("big")
	files["hello/blob.txt"] = strings.Repeat("0123456789abcdef", 16<<10) // 256 KiB: more than fasthttp prefetches
	pkgPath := filepath.Join(t.TempDir(), "big.edgeway")
	buildPackage(t, files, pkgPath, "")
	pkg, err := os.ReadFile(pkgPath)
	if err != nil {
		t.Fatal(err)
	}
	const key = "deploy-key-for-tests-0123456789"
	admin := "127.0.0.1:" + strconv.Itoa(freePort(t))
	dir := t.TempDir()
	first := filepath.Join(dir, "v1.edgeway")
	buildPackage(t, versionFolder("v1"), first, "")
	g := launch(t, t.TempDir(), "--prebuilt", first, "--state-dir", filepath.Join(dir, "state"), "--deploy-key", key,
		"--admin-listen", admin, "--deploy-read-timeout", "1s")
	if err := g.waitListening(); err != nil {
		t.Fatalf("gateway did not start: %v\n%s", err, g.logs.text())
	}
	head := "POST /deploy HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key + "\r\nContent-Length: "
	// Stalled halfway through the blob: refused once the timeout passes.
	if status := rawStatus(t, admin, head+strconv.Itoa(len(pkg))+"\r\n\r\n"+string(pkg[:len(pkg)/2])); status != "422" {
		t.Fatalf("a stalled upload: %s", status)
	}
	// The whole package, then silence where the declared length promised
	// more: the package is complete, so it deploys at once.
	if status := rawStatus(t, admin, head+strconv.Itoa(len(pkg)+1<<20)+"\r\n\r\n"+string(pkg)); status != "200" {
		t.Fatalf("a complete package with a longer declared length: %s", status)
	}
	waitBody(t, g, "/hello", "big")
}
