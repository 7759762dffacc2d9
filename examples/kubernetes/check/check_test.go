package check

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// operatorSecret is the one Secret the manifests use without defining:
// deployment.yaml says how to create it.
const operatorSecret = "edgeway-secrets"

// manifests is every object of examples/kubernetes/*.yaml, decoded.
type manifests struct {
	deployments  map[string]*appsv1.Deployment
	services     map[string]*corev1.Service
	configMaps   map[string]*corev1.ConfigMap
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
	budgets      []*policyv1.PodDisruptionBudget
	secretsNamed []string // the operator Secret's mention in deployment.yaml
}

// decodeStrict unmarshals a YAML document into out, refusing unknown or
// duplicate fields.
func decodeStrict(doc []byte, out any) error {
	return yaml.UnmarshalStrict(doc, out)
}

func load(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob("../*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in examples/kubernetes (%v)", err)
	}
	m := &manifests{deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{}, configMaps: map[string]*corev1.ConfigMap{}}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(data, []byte("kubectl create secret generic "+operatorSecret)) {
			m.secretsNamed = append(m.secretsNamed, operatorSecret)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(data), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", filepath.Base(f), i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var obj any
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				d := &appsv1.Deployment{}
				obj = d
				defer func() { m.deployments[d.Name] = d }()
			case "v1 Service":
				s := &corev1.Service{}
				obj = s
				defer func() { m.services[s.Name] = s }()
			case "v1 ConfigMap":
				c := &corev1.ConfigMap{}
				obj = c
				defer func() { m.configMaps[c.Name] = c }()
			case "autoscaling/v2 HorizontalPodAutoscaler":
				h := &autoscalingv2.HorizontalPodAutoscaler{}
				obj = h
				m.hpas = append(m.hpas, h)
			case "networking.k8s.io/v1 NetworkPolicy":
				p := &networkingv1.NetworkPolicy{}
				obj = p
				m.policies = append(m.policies, p)
			case "policy/v1 PodDisruptionBudget":
				p := &policyv1.PodDisruptionBudget{}
				obj = p
				m.budgets = append(m.budgets, p)
			default:
				t.Fatalf("%s: kind %q of %q is not one this check knows: add it", where, tm.Kind, tm.APIVersion)
			}
			if err := decodeStrict([]byte(doc), obj); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
		}
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, line := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "#") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// TestStrictDecodingRefusesUnknownFields shows the decoder this check
// relies on fails on a misspelt field.
func TestStrictDecodingRefusesUnknownFields(t *testing.T) {
	bad := "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  selectr: {a: b}\n"
	if err := decodeStrict([]byte(bad), &corev1.Service{}); err == nil {
		t.Fatal("a misspelt field decoded")
	}
	dup := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: {a: b}\ndata: {c: d}\n"
	if err := decodeStrict([]byte(dup), &corev1.ConfigMap{}); err == nil {
		t.Fatal("a duplicate field decoded")
	}
}

// edgewayHelp is `edgeway help`: EDGEWAY_BIN when set (make passes
// bin/edgeway), else `go run` of the repository's main package.
func edgewayHelp(t *testing.T) string {
	t.Helper()
	var cmd *exec.Cmd
	if bin := os.Getenv("EDGEWAY_BIN"); bin != "" {
		cmd = exec.Command(bin, "help")
	} else {
		cmd = exec.Command("go", "run", ".", "help")
		cmd.Dir = "../../.."
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("edgeway help: %v\n%s", err, out)
	}
	return string(out)
}

func matches(selector, labels map[string]string) bool {
	if len(selector) == 0 {
		return false
	}
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func containerPort(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

// selected returns the Deployments whose pods a label selector picks.
func (m *manifests) selected(sel map[string]string) []*appsv1.Deployment {
	var out []*appsv1.Deployment
	for _, d := range m.deployments {
		if matches(sel, d.Spec.Template.Labels) {
			out = append(out, d)
		}
	}
	return out
}

func TestManifests(t *testing.T) {
	m := load(t)
	help := edgewayHelp(t)
	edgeway, ok := m.deployments["edgeway"]
	if !ok {
		t.Fatal("no Deployment named edgeway")
	}

	t.Run("every Deployment selects its own pods and runs locked down", func(t *testing.T) {
		for name, d := range m.deployments {
			if d.Spec.Selector == nil || !matches(d.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				t.Errorf("%s: selector does not match its pod labels", name)
			}
			pod := d.Spec.Template.Spec
			if pod.SecurityContext == nil || pod.SecurityContext.RunAsNonRoot == nil || !*pod.SecurityContext.RunAsNonRoot {
				t.Errorf("%s: runAsNonRoot not set", name)
			}
			for _, c := range pod.Containers {
				sc := c.SecurityContext
				if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s/%s: needs readOnlyRootFilesystem and no privilege escalation", name, c.Name)
				}
				r := c.Resources
				if r.Requests.Cpu().IsZero() || r.Requests.Memory().IsZero() || r.Limits.Memory().IsZero() {
					t.Errorf("%s/%s: needs cpu and memory requests and a memory limit", name, c.Name)
				}
				for _, p := range []*corev1.Probe{c.ReadinessProbe, c.LivenessProbe} {
					if p == nil {
						t.Errorf("%s/%s: needs readiness and liveness probes", name, c.Name)
						continue
					}
					port := intstr.IntOrString{}
					switch {
					case p.HTTPGet != nil:
						port = p.HTTPGet.Port
					case p.TCPSocket != nil:
						port = p.TCPSocket.Port
					}
					if _, ok := containerPort(c, port); !ok {
						t.Errorf("%s/%s: a probe's port %s is not a container port", name, c.Name, port.String())
					}
				}
				// Every volume mount names a volume of the pod.
				for _, vm := range c.VolumeMounts {
					if volume(pod, vm.Name) == nil {
						t.Errorf("%s/%s: mount %s names no volume", name, c.Name, vm.Name)
					}
				}
			}
		}
	})

	t.Run("Services reach a Deployment's named port", func(t *testing.T) {
		for name, s := range m.services {
			ds := m.selected(s.Spec.Selector)
			if len(ds) != 1 {
				t.Errorf("service %s selects %d Deployments, want 1", name, len(ds))
				continue
			}
			for _, p := range s.Spec.Ports {
				if _, ok := containerPort(ds[0].Spec.Template.Spec.Containers[0], p.TargetPort); !ok {
					t.Errorf("service %s: targetPort %s is not a port of %s", name, p.TargetPort.String(), ds[0].Name)
				}
			}
		}
	})

	c := edgeway.Spec.Template.Spec.Containers[0]
	flags := map[string]string{}
	t.Run("flags and variables exist in edgeway help", func(t *testing.T) {
		if len(c.Args) == 0 || c.Args[0] != "serve" {
			t.Fatalf("args %v do not start with serve", c.Args)
		}
		for _, a := range c.Args[1:] {
			name, value, ok := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if !strings.HasPrefix(a, "--") || !ok {
				t.Errorf("arg %q: write flags as --name=value", a)
				continue
			}
			if !regexp.MustCompile(`(?m)^\s+--` + regexp.QuoteMeta(name) + `\s`).MatchString(help) {
				t.Errorf("flag --%s is not in edgeway help", name)
			}
			flags[name] = value
		}
		for _, e := range c.Env {
			if strings.HasPrefix(e.Name, "EDGEWAY_") && !strings.Contains(help, "env "+e.Name+",") {
				t.Errorf("variable %s is not in edgeway help", e.Name)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				if n := e.ValueFrom.SecretKeyRef.Name; n != operatorSecret || len(m.secretsNamed) == 0 {
					t.Errorf("%s: Secret %s is neither defined nor the documented %s", e.Name, n, operatorSecret)
				}
			}
		}
	})

	t.Run("ports and probes match edgeway's", func(t *testing.T) {
		http, ok := containerPort(c, intstr.FromString("http"))
		if !ok {
			t.Fatal("edgeway has no port named http")
		}
		if flags["port"] != strconv.Itoa(int(http.ContainerPort)) {
			t.Errorf("--port=%s but the container port is %d", flags["port"], http.ContainerPort)
		}
		if flags["host"] != "0.0.0.0" {
			t.Errorf("--host=%s: the kubelet's probes and the Service need 0.0.0.0", flags["host"])
		}
		if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health/ready" {
			t.Error("readiness probe must GET /health/ready (503 while loading and from SIGTERM on)")
		}
		if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/health" {
			t.Error("liveness probe must GET /health")
		}
	})

	t.Run("shutdown fits in the termination grace", func(t *testing.T) {
		grace, err := time.ParseDuration(flags["shutdown-grace"])
		if err != nil {
			t.Fatalf("--shutdown-grace: %v", err)
		}
		var preStop time.Duration
		if h := c.Lifecycle; h == nil || h.PreStop == nil || h.PreStop.Sleep == nil {
			t.Fatal("no preStop sleep: endpoints are removed after SIGTERM otherwise")
		} else {
			preStop = time.Duration(h.PreStop.Sleep.Seconds) * time.Second
		}
		tgp := edgeway.Spec.Template.Spec.TerminationGracePeriodSeconds
		if tgp == nil || time.Duration(*tgp)*time.Second <= preStop+grace {
			t.Errorf("terminationGracePeriodSeconds %v must be above preStop %v + --shutdown-grace %v", tgp, preStop, grace)
		}
	})

	t.Run("writable paths are volumes, the functions a ConfigMap", func(t *testing.T) {
		pod := edgeway.Spec.Template.Spec
		denoDir := ""
		for _, e := range c.Env {
			if e.Name == "DENO_DIR" {
				denoDir = e.Value
			}
		}
		if denoDir == "" {
			t.Fatal("DENO_DIR unset: Deno would write its cache under HOME on a read-only root")
		}
		for _, path := range []string{"/tmp", denoDir} {
			vm, ok := mountFor(c, path)
			if !ok || vm.ReadOnly {
				t.Errorf("%s is not on a writable volume", path)
				continue
			}
			if v := volume(pod, vm.Name); v == nil || v.EmptyDir == nil {
				t.Errorf("%s: volume %s is not an emptyDir", path, vm.Name)
			}
		}
		vm, ok := mountFor(c, flags["functions"])
		if !ok {
			t.Fatalf("--functions=%s is not mounted", flags["functions"])
		}
		v := volume(pod, vm.Name)
		if v == nil || v.ConfigMap == nil {
			t.Fatalf("functions volume %s is not a ConfigMap", vm.Name)
		}
		cm, ok := m.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Fatalf("ConfigMap %s is not defined", v.ConfigMap.Name)
		}
		if len(v.ConfigMap.Items) == 0 {
			t.Fatal("functions ConfigMap has no items: keys cannot hold the folders' slashes")
		}
		for _, it := range v.ConfigMap.Items {
			if _, ok := cm.Data[it.Key]; !ok {
				t.Errorf("item %s is not a key of ConfigMap %s", it.Key, cm.Name)
			}
			if parts := strings.Split(it.Path, "/"); len(parts) != 2 || !strings.HasPrefix(parts[1], "index.") {
				t.Errorf("item path %s is not <function>/index.*", it.Path)
			}
		}
	})

	t.Run("the rate limit store is the Redis Service", func(t *testing.T) {
		var store string
		for _, e := range c.Env {
			if e.Name == "EDGEWAY_RATE_LIMIT_STORE" {
				store = e.Value
			}
		}
		u, err := url.Parse(store)
		if err != nil || u.Scheme != "redis" {
			t.Fatalf("EDGEWAY_RATE_LIMIT_STORE %q: not a redis:// URL", store)
		}
		svc, ok := m.services[u.Hostname()]
		if !ok {
			t.Fatalf("store host %s is not a Service", u.Hostname())
		}
		port, _ := strconv.Atoi(u.Port())
		found := false
		for _, p := range svc.Spec.Ports {
			found = found || int(p.Port) == port
		}
		if !found {
			t.Errorf("store port %d is not a port of Service %s", port, svc.Name)
		}
		for _, p := range m.policies {
			for _, d := range m.selected(p.Spec.PodSelector.MatchLabels) {
				if !matches(svc.Spec.Selector, d.Spec.Template.Labels) {
					continue
				}
				for _, rule := range p.Spec.Ingress {
					for _, peer := range rule.From {
						if peer.PodSelector == nil || !matches(peer.PodSelector.MatchLabels, edgeway.Spec.Template.Labels) {
							t.Errorf("network policy %s lets in pods other than edgeway's", p.Name)
						}
					}
				}
			}
		}
	})

	t.Run("the autoscaler and disruption budget target edgeway", func(t *testing.T) {
		if len(m.hpas) != 1 {
			t.Fatalf("%d HorizontalPodAutoscalers, want 1", len(m.hpas))
		}
		h := m.hpas[0]
		if h.Spec.ScaleTargetRef.Kind != "Deployment" || h.Spec.ScaleTargetRef.Name != edgeway.Name {
			t.Errorf("HPA targets %s %s", h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name)
		}
		cpu := false
		for _, mt := range h.Spec.Metrics {
			cpu = cpu || (mt.Resource != nil && mt.Resource.Name == corev1.ResourceCPU)
		}
		if !cpu || h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 {
			t.Error("HPA must scale on CPU from at least 2 replicas")
		}
		for _, b := range m.budgets {
			if !matches(b.Spec.Selector.MatchLabels, edgeway.Spec.Template.Labels) {
				t.Errorf("PodDisruptionBudget %s selects no edgeway pod", b.Name)
			}
		}
	})
}

func volume(pod corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

// mountFor is the mount holding path (the longest mount path above it).
func mountFor(c corev1.Container, path string) (corev1.VolumeMount, bool) {
	var best corev1.VolumeMount
	found := false
	for _, vm := range c.VolumeMounts {
		if (path == vm.MountPath || strings.HasPrefix(path, vm.MountPath+"/")) && len(vm.MountPath) > len(best.MountPath) {
			best, found = vm, true
		}
	}
	return best, found
}
