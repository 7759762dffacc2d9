// Package config turns the command line, the environment and the functions
// folder into the immutable settings the rest of edgeway runs on.
//
// Every option is a flag that can also be set through EDGEWAY_<FLAG>; the flag
// wins. Defaults live in one table (options.go) that also drives
// `edgeway help` and the README's configuration table, so a limit is never a
// number hidden in a code path.
//
// Discovery (discover.go) finds functions the way Supabase does: directories
// matching ^[A-Za-z][A-Za-z0-9_-]*$ with an index file, `_`-prefixed shared
// folders, and `../config.toml` sections that disable a function or move its
// entrypoint. Every malformed input is an error that names the file and field.
package config
