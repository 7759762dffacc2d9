// Package setup turns the serve options into the parts a gateway runs
// with: the authenticator and other security settings, the logger, the
// startup warnings, the file descriptor limit. The public server package
// and the edgeway commands (serve, check) share it, so the binary and a Go
// program embedding the gateway start it the same way.
package setup
