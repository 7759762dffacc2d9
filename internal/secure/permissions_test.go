package secure

import (
	"slices"
	"strings"
	"testing"
)

func TestParseProfiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		custom  []string
		check   string   // a profile to look at
		want    []string // its flags
		wantErr string
	}{
		{"built-ins only", nil, "standard", []string{"--allow-net", "--allow-env"}, ""},
		{"none", nil, "none", nil, ""},
		{"strict", nil, "strict", []string{"--allow-net"}, ""},
		{"permissive", nil, "permissive", []string{"--allow-all"}, ""},
		{"custom", []string{"db=--allow-net=db.internal:5432,--allow-env=DB_URL"}, "db", []string{"--allow-net=db.internal:5432", "--allow-env=DB_URL"}, ""},
		{"custom list with commas", []string{"multi=--allow-net=a.com,b.com:443,--deny-env=AWS_SECRET,HOME"}, "multi", []string{"--allow-net=a.com,b.com:443", "--deny-env=AWS_SECRET,HOME"}, ""},
		{"custom with spaces", []string{" files = --allow-read=/data , --allow-write=/tmp/out"}, "files", []string{"--allow-read=/data", "--allow-write=/tmp/out"}, ""},
		{"custom empty", []string{"nothing="}, "nothing", nil, ""},
		{"empty item", []string{"c=--allow-read=/a,,b"}, "", nil, "empty list item"},
		{"trailing comma", []string{"c=--allow-env=A,"}, "", nil, "empty list item"},
		{"redefine built-in", []string{"standard=--allow-all"}, "", nil, `"standard" is already defined`},
		{"twice", []string{"x=--allow-env", "x=--allow-net"}, "", nil, `"x" is already defined`},
		{"no equals", []string{"x"}, "", nil, "want name=flag,flag"},
		{"bad name", []string{"a b=--allow-env"}, "", nil, "want name=flag,flag"},
		{"not a flag", []string{"x=allow-net"}, "", nil, "want --allow-<permission>"},
		{"other flag", []string{"x=--unstable"}, "", nil, "want --allow-<permission>"},
		{"unknown permission", []string{"x=--allow-network"}, "", nil, `unknown permission "network"`},
		{"deny all", []string{"x=--deny-all"}, "", nil, `unknown permission "all"`},
		{"scoped allow-all", []string{"x=--allow-all=foo"}, "", nil, "takes no list"},
		{"empty list", []string{"x=--allow-net="}, "", nil, "empty list item"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ParseProfiles(tt.custom)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseProfiles = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			set, ok := p[tt.check]
			if !ok || set.Name != tt.check || !slices.Equal(set.Flags, tt.want) {
				t.Fatalf("profile %q = %+v, want flags %q", tt.check, set, tt.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	t.Parallel()
	p, err := ParseProfiles([]string{"db=--allow-net=db:5432"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      []string
		want    []string
		wantErr string
	}{
		{"default", nil, []string{"--allow-net", "--allow-env"}, ""},
		{"built-in", []string{"strict"}, []string{"--allow-net"}, ""},
		{"none", []string{"none"}, nil, ""},
		{"custom", []string{"db"}, []string{"--allow-net=db:5432"}, ""},
		{"flags", []string{"--allow-env=A", "--allow-read=/x"}, []string{"--allow-env=A", "--allow-read=/x"}, ""},
		{"one flag", []string{"--allow-sys"}, []string{"--allow-sys"}, ""},
		{"unknown profile", []string{"admin"}, nil, `unknown permission profile "admin"`},
		{"name among flags", []string{"--allow-env", "db"}, nil, "want --allow-<permission>"},
		{"bad flag", []string{"--allow-everything"}, nil, "unknown permission"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.Resolve(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Resolve = %q, %v; want an error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	// The result is a copy: editing it must not change the profile.
	got, _ := p.Resolve([]string{"standard"})
	got[0] = "--allow-all"
	if again, _ := p.Resolve([]string{"standard"}); again[0] != "--allow-net" {
		t.Fatal("Resolve returned the profile's own slice")
	}
}

func TestDenoPermissionFlags(t *testing.T) {
	t.Parallel()
	p, err := ParseProfiles([]string{
		"db=--allow-net=db:5432,--allow-env=DB_URL",
		"reader=--allow-read,--allow-env",
		"scoped=--allow-read=/data,--allow-write=/tmp/out,--deny-env=AWS_SECRET",
		"writer=--allow-write,--allow-net",
	})
	if err != nil {
		t.Fatal(err)
	}
	const sock = "/run/edgeway/hello-1.sock"
	readable := []string{"/srv/functions/hello", "/srv/functions/_shared", "/srv/functions/import_map.json"}
	tests := []struct {
		name     string
		profile  string
		readable []string
		sockets  []string
		want     []string
	}{
		{"none", "none", readable, []string{sock}, []string{
			"--no-prompt",
			"--allow-read=/srv/functions/hello,/srv/functions/_shared,/srv/functions/import_map.json," + sock,
			"--allow-write=" + sock,
			"--allow-net=unix:" + sock,
		}},
		{"strict", "strict", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/srv/functions/hello," + sock, "--allow-write=" + sock, "--allow-net",
		}},
		{"standard", "standard", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/srv/functions/hello," + sock, "--allow-write=" + sock, "--allow-net", "--allow-env",
		}},
		{"permissive", "permissive", readable, []string{sock}, []string{"--no-prompt", "--allow-all"}},
		{"scoped net gets the socket", "db", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/srv/functions/hello," + sock, "--allow-write=" + sock,
			"--allow-net=db:5432,unix:" + sock, "--allow-env=DB_URL",
		}},
		{"unscoped read is narrowed", "reader", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/srv/functions/hello," + sock, "--allow-write=" + sock,
			"--allow-net=unix:" + sock, "--allow-env",
		}},
		{"scoped read and write merged", "scoped", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/data,/srv/functions/hello," + sock, "--allow-write=/tmp/out," + sock,
			"--allow-net=unix:" + sock, "--deny-env=AWS_SECRET",
		}},
		{"unscoped write kept", "writer", readable[:1], []string{sock}, []string{
			"--no-prompt", "--allow-read=/srv/functions/hello," + sock, "--allow-write", "--allow-net",
		}},
		{"two sockets", "none", nil, []string{"/s/a.sock", "/s/b.sock"}, []string{
			"--no-prompt", "--allow-read=/s/a.sock,/s/b.sock", "--allow-write=/s/a.sock,/s/b.sock",
			"--allow-net=unix:/s/a.sock,unix:/s/b.sock",
		}},
		{"duplicates and empties dropped", "none", []string{"/x", "", "/x"}, []string{"/x"}, []string{
			"--no-prompt", "--allow-read=/x", "--allow-write=/x", "--allow-net=unix:/x",
		}},
		{"paths with commas left out", "none", []string{"/a,b", "/c"}, []string{"/s,1.sock"}, []string{"--no-prompt", "--allow-read=/c"}},
		{"nothing at all", "none", nil, nil, []string{"--no-prompt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			flags, err := p.Resolve([]string{tt.profile})
			if err != nil {
				t.Fatal(err)
			}
			got := DenoPermissionFlags(flags, tt.readable, tt.sockets)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("DenoPermissionFlags =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestCheckPermissionPath(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path string
		ok   bool
	}{
		{"/srv/functions/hello", true},
		{"/run/edgeway/w 1.sock", true},
		{"", false},
		{"/srv/functions/a,b", false},
	}
	for _, tt := range tests {
		if err := CheckPermissionPath(tt.path); (err == nil) != tt.ok {
			t.Errorf("CheckPermissionPath(%q) = %v, want ok %v", tt.path, err, tt.ok)
		}
	}
}
