// Package check decodes every manifest of examples/kubernetes strictly
// into the Kubernetes API types and checks what they refer to: ports,
// probe paths, volumes, the Redis Service, the HPA's target and the
// edgeway flags and variables (against `edgeway help`). It is a module of
// its own so edgeway's binary does not depend on k8s.io/api.
package check
