// Package deploy keeps the versions uploaded to the deploy endpoint in
// --state-dir and swaps the served functions to one of them:
//
//	state-dir/versions/<id>/  an unpacked, verified artifact (id = sha256 of its manifest.json)
//	state-dir/current         the active version's id (what a restart serves)
//	state-dir/history.json    the activations, oldest first; the last is active
//
// A deploy unpacks the upload with the artifact limits (a hostile tar
// writes nothing outside its folder), verifies it (the signature too with
// --verify-key), reloads the supervisor to it make-before-break, and only
// then records it as current: a refused or failed deploy leaves the
// running version and the state as they were. One deploy or rollback runs
// at a time; another is refused with ErrBusy.
package deploy
