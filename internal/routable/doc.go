// Package routable is where the control plane and the data plane meet: the
// record of a function the gateway can route to. lifecycle builds and
// publishes these records (and reports their workers' status through
// them); gateway only reads them. It imports neither, so the arrows between
// the two run one way: gateway → routable ← lifecycle.
package routable
