// Package bootstrap embeds the Deno-side script every worker runs before the
// user's function: see bootstrap.js for its protocol with the gateway.
package bootstrap

import _ "embed"

// Script is bootstrap.js, written to the gateway's private runtime folder
// and run as each worker's main module.
//
//go:embed bootstrap.js
var Script []byte
