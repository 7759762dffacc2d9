package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"edgeway.dev/edgeway/internal/config"
	"edgeway.dev/edgeway/internal/lifecycle"
)

// listTimeout bounds asking a running gateway for its state.
const listTimeout = 5 * time.Second

// liveFunction is the part of a function's /health entry list shows.
type liveFunction struct {
	Running  int    `json:"running"`
	Starting int    `json:"starting"`
	Draining int    `json:"draining"`
	Restarts uint64 `json:"restarts"`
	Breaker  string `json:"breaker"`
	Latency  struct {
		P95     float64 `json:"p95"`
		Samples int     `json:"samples"`
	} `json:"latencyMs"`
}

// list prints the functions of a folder (routes, auth, permissions,
// pool), and with --from the live state a running gateway reports on its
// detailed /health (which needs --internal-key).
func list(args []string, stdout, stderr io.Writer) int {
	from, args, err := cutFlag(args, "from")
	if err != nil {
		fmt.Fprintf(stderr, "edgeway list: %v\n", err)
		return 2
	}
	opts, err := config.Parse(args, os.Getenv)
	if errors.Is(err, config.ErrHelp) {
		fmt.Fprint(stdout, "Usage: edgeway list [--from http://HOST:PORT] [flags]\n\n"+commandHelp["list"]+"\n\nFlags: --from, and those of serve (each also read from its environment variable):\n")
		config.PrintHelp(stdout)
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "edgeway list: %v\n", err)
		return 2
	}
	layout, err := config.Discover(opts.Functions, opts)
	if err != nil {
		return fail(stderr, err)
	}
	if err := lifecycle.Validate(opts, layout); err != nil {
		return fail(stderr, err)
	}
	var live map[string]liveFunction
	if from != "" {
		if live, err = fetchLive(from, opts.InternalKey); err != nil {
			return fail(stderr, err)
		}
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	header := "FUNCTION\tROUTE\tAUTH\tPERMISSIONS\tPOOL"
	if live != nil {
		header += "\tWORKERS\tRESTARTS\tBREAKER\tP95"
	}
	fmt.Fprintln(tw, header)
	for _, fn := range layout.Functions {
		auth, perms := functionAccess(opts, fn)
		row := fmt.Sprintf("%s\t/functions/v1/%s, /%s\t%s\t%s\t%d-%d", fn.Name, fn.Name, fn.Name, auth, perms, fn.Config.MinWorkers, fn.Config.MaxWorkers)
		if live != nil {
			row += "\t" + liveColumns(live, fn.Name)
			delete(live, fn.Name)
		}
		fmt.Fprintln(tw, row)
	}
	for name := range live { // served, but gone from the folder (not reloaded yet)
		fmt.Fprintf(tw, "%s\t(not in %s)\t\t\t\t%s\n", name, layout.Root, liveColumns(live, name))
	}
	tw.Flush()
	return 0
}

// functionAccess is how a function is called: jwt, apikey or public, and
// its permission profile or flags.
func functionAccess(opts config.Options, fn config.Function) (auth, perms string) {
	auth = "jwt"
	if opts.Auth == "apikey" {
		auth = "apikey"
	}
	if fn.Config.Public || opts.Auth == "none" {
		auth = "public"
	}
	perms = "standard"
	if len(fn.Config.Permissions) > 0 {
		perms = strings.Join(fn.Config.Permissions, ",")
	}
	return auth, perms
}

// liveColumns formats a function's live state, or says it is not loaded.
func liveColumns(live map[string]liveFunction, name string) string {
	f, ok := live[name]
	if !ok {
		return "not loaded\t\t\t"
	}
	workers := fmt.Sprintf("%d running", f.Running)
	if f.Starting > 0 {
		workers += fmt.Sprintf(", %d starting", f.Starting)
	}
	if f.Draining > 0 {
		workers += fmt.Sprintf(", %d draining", f.Draining)
	}
	p95 := "-"
	if f.Latency.Samples > 0 {
		p95 = strconv.FormatFloat(f.Latency.P95, 'f', 1, 64) + "ms"
	}
	return fmt.Sprintf("%s\t%d\t%s\t%s", workers, f.Restarts, f.Breaker, p95)
}

// fetchLive reads the functions of a running gateway's detailed /health.
func fetchLive(from, key string) (map[string]liveFunction, error) {
	if key == "" {
		return nil, errors.New("flag --from: the detailed /health needs --internal-key (or EDGEWAY_INTERNAL_KEY)")
	}
	req, err := http.NewRequest("GET", strings.TrimSuffix(from, "/")+"/health", nil)
	if err != nil {
		return nil, fmt.Errorf("flag --from: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: listTimeout}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("flag --from: %w", err)
	}
	defer resp.Body.Close()
	var doc struct {
		Functions map[string]liveFunction `json:"functions"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("flag --from: %s/health answered %s", from, resp.Status)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&doc); err != nil {
		return nil, fmt.Errorf("flag --from: %s/health: %w", from, err)
	}
	if doc.Functions == nil {
		return nil, fmt.Errorf("flag --from: %s/health has no function details: is --internal-key the gateway's?", from)
	}
	return doc.Functions, nil
}

// cutFlag removes --name VALUE or --name=VALUE from args, for a flag that
// only one command knows.
func cutFlag(args []string, name string) (string, []string, error) {
	var value string
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--"+name || a == "-"+name:
			if i+1 == len(args) {
				return "", nil, fmt.Errorf("flag --%s needs a value", name)
			}
			value = args[i+1]
			i++
		case strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"="):
			_, value, _ = strings.Cut(a, "=")
		default:
			rest = append(rest, a)
		}
	}
	return value, rest, nil
}
