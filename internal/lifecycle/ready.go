package lifecycle

// Ready reports whether the function set is loaded and its lifecycles
// run: /health/ready answers 503 until then, so a load balancer sends
// nothing to an instance still starting.
func (s *Supervisor) Ready() bool { return s.running.Load() }
