package secure

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// DenoPermissionFlags returns the permission flags a worker is started
// with, given its profile's flags (from Profiles.Resolve), the paths it must
// read (its folder, shared folders, import map and config files) and its
// Unix socket paths:
//
//   - --no-prompt always, so a missing permission fails instead of waiting
//     on a terminal;
//   - --allow-read scoped to the profile's read paths, readable and the
//     sockets; an unscoped --allow-read in the profile is narrowed to them;
//   - --allow-write scoped to the profile's write paths and the sockets,
//     or unscoped when the profile grants that;
//   - --allow-net=unix:<socket> for each socket (Deno 2.9 asks for it),
//     merged into a scoped --allow-net list, or nothing extra when the
//     profile has an unscoped --allow-net;
//   - the profile's other flags (env, sys, run, ffi, import, and every
//     --deny-*) as they are.
//
// A profile with --allow-all gets --no-prompt and its own flags only.
//
// Deno splits these lists on commas and has no escape for them (checked
// with Deno 2.9.6, which rejects ",," with "Empty path is not allowed"), so a
// path or socket containing a comma is left out: the worker then fails
// closed with NotCapable. Reject such paths up front with
// CheckPermissionPath.
func DenoPermissionFlags(profileFlags []string, readable []string, sockets []string) []string {
	out := []string{"--no-prompt"}
	if slices.Contains(profileFlags, "--allow-all") {
		return append(out, profileFlags...)
	}
	var read, write, net grant
	var rest []string
	for _, f := range profileFlags {
		switch {
		case read.take(f, "--allow-read"):
		case write.take(f, "--allow-write"):
		case net.take(f, "--allow-net"):
		default:
			rest = append(rest, f)
		}
	}
	read.all = false // narrowed to what the worker needs
	read.add(readable...)
	read.add(sockets...)
	write.add(sockets...)
	for _, s := range sockets {
		if CheckPermissionPath(s) == nil {
			net.add("unix:" + s)
		}
	}
	out = read.appendFlag(out, "--allow-read")
	out = write.appendFlag(out, "--allow-write")
	out = net.appendFlag(out, "--allow-net")
	return append(out, rest...)
}

// grant accumulates one permission: unscoped, or a list of items.
type grant struct {
	all   bool
	items []string
}

// take consumes flag f if it is name or name=list.
func (g *grant) take(f, name string) bool {
	if f == name {
		g.all = true
		return true
	}
	list, ok := strings.CutPrefix(f, name+"=")
	if !ok {
		return false
	}
	g.add(strings.Split(list, ",")...)
	return true
}

// add appends the items not yet present, leaving out what Deno's list
// syntax cannot carry.
func (g *grant) add(items ...string) {
	for _, it := range items {
		if CheckPermissionPath(it) == nil && !slices.Contains(g.items, it) {
			g.items = append(g.items, it)
		}
	}
}

func (g *grant) appendFlag(out []string, name string) []string {
	switch {
	case g.all:
		return append(out, name)
	case len(g.items) > 0:
		return append(out, name+"="+strings.Join(g.items, ","))
	}
	return out
}

// CheckPermissionPath reports whether path can go into a Deno permission
// list: it must be non-empty and free of commas.
func CheckPermissionPath(path string) error {
	switch {
	case path == "":
		return errors.New("empty path in a Deno permission list")
	case strings.Contains(path, ","):
		return fmt.Errorf("path %q contains a comma, which Deno permission lists cannot express", path)
	}
	return nil
}
