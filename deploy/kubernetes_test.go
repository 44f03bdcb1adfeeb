package deploy

import (
	"errors"
	"fmt"
	"net"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

const (
	// imageRepository is the image every manifest runs, without tag or digest.
	imageRepository = "ghcr.io/cf-scoped-token/cf-scoped-token"

	// nonRootID is the user and group the broker runs as in Kubernetes: the image has no USER
	// (GitHub runs Docker actions as root), so the pod must say it.
	nonRootID = 65532

	// maxMemoryLimit is what "small" means for the broker's memory limit.
	maxMemoryLimit = "256Mi"
)

// wantArgs is the broker's command line in every manifest (the image's entrypoint is the binary).
func wantArgs() []string {
	return []string{
		"broker",
		"--policy=/etc/cf-scoped-token/policy.yaml",
		"--listen=:8080",
		"--api-token-file=/var/run/secrets/cf-scoped-token/api-token",
		"--drain=8s",
	}
}

// drainOf is the broker's --drain in args: after SIGTERM it stops within it, the exchanges
// in flight finished and the tokens of the ones it had to cut off deleted.
func drainOf(args []string) (time.Duration, error) {
	v, err := flagValue(args, "drain")
	if err != nil {
		return 0, err
	}
	return time.ParseDuration(v)
}

// flagValue returns the value of --name=VALUE in args.
func flagValue(args []string, name string) (string, error) {
	var found []string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("args %q: want exactly one --%s=VALUE, found %d", args, name, len(found))
	}
	return found[0], nil
}

// listenPort returns the port of the --listen address in args.
func listenPort(args []string) (int, error) {
	addr, err := flagValue(args, "listen")
	if err != nil {
		return 0, err
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, fmt.Errorf("--listen=%s: %w", addr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return 0, fmt.Errorf("--listen=%s: port: %w", addr, err)
	}
	return n, nil
}

// broker returns the Deployment's pod spec and its one container, named broker.
func broker(m *manifests) (*corev1.PodSpec, *corev1.Container, error) {
	pod := &m.deployment.Spec.Template.Spec
	if len(pod.Containers) != 1 || pod.Containers[0].Name != "broker" {
		return nil, nil, fmt.Errorf("deployment: want one container, named broker; have %d", len(pod.Containers))
	}
	if len(pod.InitContainers) > 0 || len(pod.EphemeralContainers) > 0 {
		return nil, nil, errors.New("deployment: init or ephemeral containers are not checked by this test")
	}
	return pod, &pod.Containers[0], nil
}

// container returns the broker container, for the mutations; the checks use broker.
func container(m *manifests) *corev1.Container { return &m.deployment.Spec.Template.Spec.Containers[0] }

// namedPort returns the container port named name.
func namedPort(c *corev1.Container, name string) (corev1.ContainerPort, error) {
	for _, p := range c.Ports {
		if p.Name == name {
			return p, nil
		}
	}
	return corev1.ContainerPort{}, fmt.Errorf("container %s: no port named %q", c.Name, name)
}

// brokerPortName is the name of the broker container's port, which probes and the Service use.
const brokerPortName = "http"

// checkProbe asserts that p is an HTTP GET of path on the broker's port, by its name.
func checkProbe(kind string, p *corev1.Probe, wantPath string, c *corev1.Container) error {
	if p == nil {
		return fmt.Errorf("%s probe: missing", kind)
	}
	if p.HTTPGet == nil {
		return fmt.Errorf("%s probe: not an HTTP GET", kind)
	}
	if p.HTTPGet.Path != wantPath {
		return fmt.Errorf("%s probe: path %q, want %q", kind, p.HTTPGet.Path, wantPath)
	}
	if p.HTTPGet.Port.Type != intstr.String || p.HTTPGet.Port.StrVal != brokerPortName {
		return fmt.Errorf("%s probe: port %s, want the named port %q", kind, p.HTTPGet.Port.String(), brokerPortName)
	}
	if _, err := namedPort(c, brokerPortName); err != nil {
		return fmt.Errorf("%s probe: %w", kind, err)
	}
	if p.HTTPGet.Scheme != "" && p.HTTPGet.Scheme != corev1.URISchemeHTTP {
		return fmt.Errorf("%s probe: scheme %s: the broker serves plain HTTP", kind, p.HTTPGet.Scheme)
	}
	return nil
}

// fileSource is what a container sees at a path: a key of a Secret or ConfigMap volume.
type fileSource struct {
	mount      corev1.VolumeMount
	kind       string // "Secret" or "ConfigMap"
	name       string // the Secret's or the ConfigMap's name
	key        string
	mode       int32
	modeSource string
}

// fileAt resolves path in the container to the volume key mounted there.
func fileAt(pod *corev1.PodSpec, c *corev1.Container, file string) (fileSource, error) {
	var fs fileSource
	var mount *corev1.VolumeMount
	for i, vm := range c.VolumeMounts {
		dir := strings.TrimSuffix(vm.MountPath, "/")
		if vm.MountPath == file || strings.HasPrefix(file, dir+"/") {
			if mount == nil || len(vm.MountPath) > len(mount.MountPath) {
				mount = &c.VolumeMounts[i]
			}
		}
	}
	if mount == nil {
		return fs, fmt.Errorf("%s: no volume is mounted there", file)
	}
	if mount.SubPath != "" || mount.SubPathExpr != "" {
		// A subPath mount never sees an update of its ConfigMap or Secret.
		return fs, fmt.Errorf("%s: mounted with a subPath", file)
	}
	fs.mount = *mount
	rel := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
	var vol *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == mount.Name {
			vol = &pod.Volumes[i]
		}
	}
	if vol == nil {
		return fs, fmt.Errorf("%s: volume %q is mounted but not declared", file, mount.Name)
	}
	var items []corev1.KeyToPath
	var defaultMode *int32
	switch {
	case vol.Secret != nil:
		fs.kind, fs.name, items, defaultMode = "Secret", vol.Secret.SecretName, vol.Secret.Items, vol.Secret.DefaultMode
	case vol.ConfigMap != nil:
		fs.kind, fs.name, items, defaultMode = "ConfigMap", vol.ConfigMap.Name, vol.ConfigMap.Items, vol.ConfigMap.DefaultMode
	default:
		return fs, fmt.Errorf("%s: volume %q is neither a Secret nor a ConfigMap", file, vol.Name)
	}
	fs.mode, fs.modeSource = corev1.SecretVolumeSourceDefaultMode, "the default mode"
	if defaultMode != nil {
		fs.mode, fs.modeSource = *defaultMode, "defaultMode"
	}
	if len(items) == 0 {
		fs.key = rel
		return fs, nil
	}
	for _, it := range items {
		if it.Path == rel {
			fs.key = it.Key
			if it.Mode != nil {
				fs.mode, fs.modeSource = *it.Mode, "the item's mode"
			}
			return fs, nil
		}
	}
	return fs, fmt.Errorf("%s: volume %q maps no key to %q", file, vol.Name, rel)
}

// checkFlagFile asserts that the file the broker's --flag names is a key that keys holds, of
// the kind's volume named want (as manifest declares it), mounted read-only.
func checkFlagFile(m *manifests, flag, kind, want, manifest string, keys map[string]string) error {
	pod, c, err := broker(m)
	if err != nil {
		return err
	}
	file, err := flagValue(c.Args, flag)
	if err != nil {
		return err
	}
	fs, err := fileAt(pod, c, file)
	if err != nil {
		return err
	}
	if fs.kind != kind {
		return fmt.Errorf("%s: not from a %s", file, kind)
	}
	if fs.name != want {
		return fmt.Errorf("%s: %s %q, the one in %s is %q", file, kind, fs.name, manifest, want)
	}
	if _, ok := keys[fs.key]; !ok {
		return fmt.Errorf("%s: key %q, the %s in %s has no such key", file, fs.key, kind, manifest)
	}
	return checkReadOnlyFile(file, fs)
}

// checkReadOnlyFile asserts the file is read-only and readable by nobody outside the pod's group.
func checkReadOnlyFile(file string, fs fileSource) error {
	if !fs.mount.ReadOnly {
		return fmt.Errorf("%s: volume mount %q is not readOnly", file, fs.mount.Name)
	}
	if fs.mode&0o007 != 0 || fs.mode&0o222 != 0 {
		return fmt.Errorf("%s: mode %#o (%s): want no write bits and nothing for others", file, fs.mode, fs.modeSource)
	}
	return nil
}

// placeholder is what the example Secret's value must look like: words that say to replace it,
// nothing that could be (or be mistaken for) a token.
var placeholder = regexp.MustCompile(`^replace-me(-[a-z]+)*$`)

// allowedEnv are the only environment variables the broker's container may carry: none is a
// credential, whatever its value (the parent token is a file).
var allowedEnv = map[string]bool{"GOMEMLIMIT": true}

// secretish matches an environment variable name that would hold a credential.
var secretish = regexp.MustCompile(`(?i)token|secret|passw|credential|api_?key|private`)

// checkEnv asserts that no environment variable carries a token: the parent is a file, because an
// environment variable is inherited by every child process and readable in /proc.
func checkEnv(c *corev1.Container) error {
	if len(c.EnvFrom) > 0 {
		return fmt.Errorf("container %s: envFrom imports whole ConfigMaps or Secrets into the environment", c.Name)
	}
	for _, e := range c.Env {
		switch {
		case secretish.MatchString(e.Name):
			return fmt.Errorf("container %s: env %s: a credential's name", c.Name, e.Name)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			return fmt.Errorf("container %s: env %s: taken from a Secret", c.Name, e.Name)
		case !allowedEnv[e.Name]:
			return fmt.Errorf("container %s: env %s: not one of the variables the broker may be given", c.Name, e.Name)
		}
	}
	return nil
}

// checkLabelsSelect asserts that selector selects the broker's pods.
func checkLabelsSelect(what string, selector *metav1.LabelSelector, pod map[string]string) error {
	if selector == nil || len(selector.MatchLabels) == 0 {
		return fmt.Errorf("%s: no selector", what)
	}
	if len(selector.MatchExpressions) > 0 {
		return fmt.Errorf("%s: matchExpressions are not checked by this test", what)
	}
	for k, v := range selector.MatchLabels {
		if pod[k] != v {
			return fmt.Errorf("%s: selects %s=%s, the pods have %s=%q", what, k, v, k, pod[k])
		}
	}
	return nil
}

// policyFile is the shape of the broker's policy (SPEC "The policy file"), enough to check the
// example: decoded strictly, so an unknown key fails here as it fails in the broker.
type policyFile struct {
	Audience string            `json:"audience"`
	Issuers  map[string]string `json:"issuers"`
	Rules    []struct {
		Name   string         `json:"name"`
		Issuer string         `json:"issuer"`
		Claims map[string]any `json:"claims"`
		Grant  struct {
			Owner      string   `json:"owner,omitempty"`
			AccountIDs []string `json:"account-ids"`
			Scopes     []string `json:"scopes"`
			MaxTTL     string   `json:"max-ttl,omitempty"`
			AllowedIPs []string `json:"allowed-ips,omitempty"`
		} `json:"grant"`
	} `json:"rules"`
}

// checkPolicy asserts what a policy deployed this way needs beyond loading: GitHub's issuer
// alone, an https audience, and no "caller" pin, which behind an ingress would be the proxy.
// The loader's own rules (tenant pins by id, quoted claims, accounts, max-ttl) are proved on
// this ConfigMap by internal/policy's TestDeployedPolicy, with policy.Parse itself.
func checkPolicy(text string) error {
	var p policyFile
	if err := yaml.UnmarshalStrict([]byte(text), &p); err != nil {
		return fmt.Errorf("policy: %w", err)
	}
	if !strings.HasPrefix(p.Audience, "https://") {
		return fmt.Errorf("policy: audience %q: want the broker's https URL", p.Audience)
	}
	if diff := cmp.Diff(map[string]string{"github": "https://token.actions.githubusercontent.com"}, p.Issuers); diff != "" {
		return fmt.Errorf("policy: issuers: want GitHub's only (-want +got):\n%s", diff)
	}
	if len(p.Rules) == 0 {
		return errors.New("policy: no rules")
	}
	for _, r := range p.Rules {
		if r.Name == "" || r.Issuer != "github" {
			return fmt.Errorf("policy: rule %q: issuer %q, want github", r.Name, r.Issuer)
		}
		// Behind a Service and an ingress the broker sees the proxy's address, not the runner's:
		// a token pinned to "caller" would work from nowhere.
		if slices.Contains(r.Grant.AllowedIPs, "caller") {
			return fmt.Errorf("policy: rule %q: allowed-ips caller: behind an ingress the caller is the proxy", r.Name)
		}
	}
	return nil
}

// replaceIn replaces old by new in *s, and fails loudly when old is not there: a mutation that
// changes nothing would make its check look as if it could not fail.
func replaceIn(s *string, old, replacement string) {
	if !strings.Contains(*s, old) {
		panic(fmt.Sprintf("mutation: %q not found", old))
	}
	*s = strings.Replace(*s, old, replacement, 1)
}

func ptr[T any](v T) *T { return &v }

func kubernetesPromises() []promise {
	return []promise{
		{
			name: "deployment: two replicas",
			check: func(m *manifests) error {
				r := m.deployment.Spec.Replicas
				if r == nil {
					return errors.New("deployment: replicas unset (1), want 2")
				}
				if *r != 2 {
					return fmt.Errorf("deployment: replicas %d, want 2", *r)
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"one":   func(m *manifests) { m.deployment.Spec.Replicas = ptr[int32](1) },
				"unset": func(m *manifests) { m.deployment.Spec.Replicas = nil },
			},
		},
		{
			name: "deployment: the release image by tag or digest",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				return checkImage(c.Image, imageRepository)
			}),
			breaks: map[string]func(*manifests){
				"another image": func(m *manifests) { container(m).Image = "ghcr.io/someone/cf-scoped-token:v1" },
				"no tag":        func(m *manifests) { container(m).Image = imageRepository },
				"latest":        func(m *manifests) { container(m).Image = imageRepository + ":latest" },
				"bad digest":    func(m *manifests) { container(m).Image = imageRepository + "@sha256:1234" },
			},
		},
		{
			name: "deployment: the broker's command line",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				if len(c.Command) > 0 {
					return fmt.Errorf("deployment: command %q replaces the image's entrypoint", c.Command)
				}
				if diff := cmp.Diff(wantArgs(), c.Args); diff != "" {
					return fmt.Errorf("deployment: args (-want +got):\n%s", diff)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"command":           func(m *manifests) { container(m).Command = []string{"/bin/sh", "-c"} },
				"token as a flag":   func(m *manifests) { container(m).Args[3] = "--api-token=x" },
				"another directory": func(m *manifests) { container(m).Args[1] = "--policy=/policy.yaml" },
			},
		},
		{
			name: "deployment: the named port is the --listen port",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				port, err := listenPort(c.Args)
				if err != nil {
					return err
				}
				p, err := namedPort(c, brokerPortName)
				if err != nil {
					return err
				}
				if int(p.ContainerPort) != port || p.Protocol != corev1.ProtocolTCP {
					return fmt.Errorf("deployment: port %s is %d/%s, --listen says %d/TCP", p.Name, p.ContainerPort, p.Protocol, port)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"container port": func(m *manifests) { container(m).Ports[0].ContainerPort = 9090 },
				"listen":         func(m *manifests) { container(m).Args[2] = "--listen=:9090" },
				"renamed":        func(m *manifests) { container(m).Ports[0].Name = "web" },
				"udp":            func(m *manifests) { container(m).Ports[0].Protocol = corev1.ProtocolUDP },
			},
		},
		{
			name: "deployment: readiness is GET /readyz on the named port",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				return checkProbe("readiness", c.ReadinessProbe, "/readyz", c)
			}),
			breaks: map[string]func(*manifests){
				"path":           func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Path = "/healthz" },
				"numeric port":   func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Port = intstr.FromInt32(8080) },
				"unknown port":   func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Port = intstr.FromString("admin") },
				"https":          func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Scheme = corev1.URISchemeHTTPS },
				"missing":        func(m *manifests) { container(m).ReadinessProbe = nil },
				"a TCP check":    func(m *manifests) { container(m).ReadinessProbe.HTTPGet = nil },
				"port renamed":   func(m *manifests) { container(m).Ports[0].Name = "web" },
				"trailing slash": func(m *manifests) { container(m).ReadinessProbe.HTTPGet.Path = "/readyz/" },
			},
		},
		{
			name: "deployment: liveness (and startup) is GET /healthz on the named port",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				if err := checkProbe("liveness", c.LivenessProbe, "/healthz", c); err != nil {
					return err
				}
				if c.StartupProbe != nil {
					return checkProbe("startup", c.StartupProbe, "/healthz", c)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"path":         func(m *manifests) { container(m).LivenessProbe.HTTPGet.Path = "/readyz" },
				"numeric port": func(m *manifests) { container(m).LivenessProbe.HTTPGet.Port = intstr.FromInt32(8080) },
				"missing":      func(m *manifests) { container(m).LivenessProbe = nil },
				"startup port": func(m *manifests) { container(m).StartupProbe.HTTPGet.Port = intstr.FromString("admin") },
			},
		},
		{
			name: "deployment: the parent token is a read-only Secret file at --api-token-file",
			check: func(m *manifests) error {
				return checkFlagFile(m, "api-token-file", "Secret", m.secret.Name, secretFile, m.secret.StringData)
			},
			breaks: map[string]func(*manifests){
				"writable mount": func(m *manifests) { container(m).VolumeMounts[1].ReadOnly = false },
				"world-readable": func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.DefaultMode = ptr[int32](0o444) },
				"writable file":  func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.DefaultMode = ptr[int32](0o640) },
				"no mode":        func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.DefaultMode = nil },
				"item mode": func(m *manifests) {
					m.deployment.Spec.Template.Spec.Volumes[1].Secret.Items[0].Mode = ptr[int32](0o644)
				},
				"other file name": func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.Items[0].Path = "token" },
				"other key":       func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.Items[0].Key = "token" },
				"other Secret":    func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[1].Secret.SecretName = "parent" },
				"other directory": func(m *manifests) { container(m).VolumeMounts[1].MountPath = "/run/secrets/cf" },
				"subPath":         func(m *manifests) { container(m).VolumeMounts[1].SubPath = "api-token" },
				"flag elsewhere":  func(m *manifests) { container(m).Args[3] = "--api-token-file=/tmp/api-token" },
				"from a ConfigMap": func(m *manifests) {
					v := &m.deployment.Spec.Template.Spec.Volumes[1]
					v.ConfigMap = &corev1.ConfigMapVolumeSource{
						LocalObjectReference: corev1.LocalObjectReference{Name: v.Secret.SecretName},
						Items:                v.Secret.Items, DefaultMode: v.Secret.DefaultMode,
					}
					v.Secret = nil
				},
			},
		},
		{
			name: "deployment: the policy is the ConfigMap key at --policy, read-only",
			check: func(m *manifests) error {
				return checkFlagFile(m, "policy", "ConfigMap", m.configMap.Name, configMapFile, m.configMap.Data)
			},
			breaks: map[string]func(*manifests){
				"writable mount":  func(m *manifests) { container(m).VolumeMounts[0].ReadOnly = false },
				"other key":       func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[0].ConfigMap.Items[0].Key = "policy.yml" },
				"other ConfigMap": func(m *manifests) { m.deployment.Spec.Template.Spec.Volumes[0].ConfigMap.Name = "policy" },
				"other directory": func(m *manifests) { container(m).VolumeMounts[0].MountPath = "/etc/cf" },
				"key renamed in the ConfigMap": func(m *manifests) {
					m.configMap.Data["broker.yaml"] = m.configMap.Data["policy.yaml"]
					delete(m.configMap.Data, "policy.yaml")
				},
			},
		},
		{
			name: "deployment: non-root, as 65532, seccomp RuntimeDefault, at pod and container level",
			check: on(broker, func(pod *corev1.PodSpec, c *corev1.Container) error {
				ps, cs := pod.SecurityContext, c.SecurityContext
				if ps == nil || cs == nil {
					return errors.New("deployment: pod or container securityContext missing")
				}
				for _, f := range []struct {
					what    string
					nonRoot *bool
					user    *int64
					group   *int64
					seccomp *corev1.SeccompProfile
				}{
					{"pod", ps.RunAsNonRoot, ps.RunAsUser, ps.RunAsGroup, ps.SeccompProfile},
					{"container", cs.RunAsNonRoot, cs.RunAsUser, cs.RunAsGroup, cs.SeccompProfile},
				} {
					if f.nonRoot == nil || !*f.nonRoot {
						return fmt.Errorf("deployment: %s runAsNonRoot is not true", f.what)
					}
					if f.user == nil || *f.user != nonRootID || f.group == nil || *f.group != nonRootID {
						return fmt.Errorf("deployment: %s runAsUser/runAsGroup: want %d/%d", f.what, nonRootID, nonRootID)
					}
					if f.seccomp == nil || f.seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
						return fmt.Errorf("deployment: %s seccompProfile: want RuntimeDefault", f.what)
					}
				}
				if ps.FSGroup == nil || *ps.FSGroup != nonRootID {
					return fmt.Errorf("deployment: pod fsGroup: want %d, the group that may read the mounted files", nonRootID)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"pod may run as root": func(m *manifests) { m.deployment.Spec.Template.Spec.SecurityContext.RunAsNonRoot = ptr(false) },
				"no pod context":      func(m *manifests) { m.deployment.Spec.Template.Spec.SecurityContext = nil },
				"container as root":   func(m *manifests) { container(m).SecurityContext.RunAsUser = ptr[int64](0) },
				"container group 0":   func(m *manifests) { container(m).SecurityContext.RunAsGroup = ptr[int64](0) },
				"container nonroot":   func(m *manifests) { container(m).SecurityContext.RunAsNonRoot = nil },
				"pod unconfined": func(m *manifests) {
					m.deployment.Spec.Template.Spec.SecurityContext.SeccompProfile.Type = corev1.SeccompProfileTypeUnconfined
				},
				"container seccomp": func(m *manifests) { container(m).SecurityContext.SeccompProfile = nil },
				"fsGroup":           func(m *manifests) { m.deployment.Spec.Template.Spec.SecurityContext.FSGroup = nil },
			},
		},
		{
			name: "deployment: read-only root file system, no privilege escalation, every capability dropped",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				cs := c.SecurityContext
				switch {
				case cs == nil:
					return errors.New("deployment: container securityContext missing")
				case cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem:
					return errors.New("deployment: readOnlyRootFilesystem is not true")
				case cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation:
					return errors.New("deployment: allowPrivilegeEscalation is not false")
				case cs.Privileged != nil && *cs.Privileged:
					return errors.New("deployment: privileged")
				case cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}):
					return errors.New("deployment: capabilities: want drop [ALL]")
				case len(cs.Capabilities.Add) > 0:
					return fmt.Errorf("deployment: capabilities: adds %v", cs.Capabilities.Add)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"writable root":  func(m *manifests) { container(m).SecurityContext.ReadOnlyRootFilesystem = ptr(false) },
				"root unset":     func(m *manifests) { container(m).SecurityContext.ReadOnlyRootFilesystem = nil },
				"escalation":     func(m *manifests) { container(m).SecurityContext.AllowPrivilegeEscalation = ptr(true) },
				"escalation nil": func(m *manifests) { container(m).SecurityContext.AllowPrivilegeEscalation = nil },
				"privileged":     func(m *manifests) { container(m).SecurityContext.Privileged = ptr(true) },
				"drop some":      func(m *manifests) { container(m).SecurityContext.Capabilities.Drop = []corev1.Capability{"NET_RAW"} },
				"add one": func(m *manifests) {
					container(m).SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
				},
				"no capabilities": func(m *manifests) { container(m).SecurityContext.Capabilities = nil },
			},
		},
		{
			name: "deployment: no service account token, no service links",
			check: func(m *manifests) error {
				pod := m.deployment.Spec.Template.Spec
				if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
					return errors.New("deployment: automountServiceAccountToken is not false")
				}
				if pod.EnableServiceLinks == nil || *pod.EnableServiceLinks {
					return errors.New("deployment: enableServiceLinks is not false")
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"automount": func(m *manifests) { m.deployment.Spec.Template.Spec.AutomountServiceAccountToken = ptr(true) },
				"default":   func(m *manifests) { m.deployment.Spec.Template.Spec.AutomountServiceAccountToken = nil },
				"links":     func(m *manifests) { m.deployment.Spec.Template.Spec.EnableServiceLinks = nil },
			},
		},
		{
			name: "deployment: no environment variable holds a token",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				return checkEnv(c)
			}),
			breaks: map[string]func(*manifests){
				"parent in env": func(m *manifests) {
					container(m).Env = append(container(m).Env, corev1.EnvVar{Name: "CF_SCOPED_TOKEN_API_TOKEN", ValueFrom: &corev1.EnvVarSource{
						SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cf-scoped-token-parent"}, Key: "api-token"},
					}})
				},
				"any Secret key": func(m *manifests) {
					container(m).Env = append(container(m).Env, corev1.EnvVar{Name: "X", ValueFrom: &corev1.EnvVarSource{
						SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}, Key: "k"},
					}})
				},
				"a token literal": func(m *manifests) {
					container(m).Env = append(container(m).Env, corev1.EnvVar{Name: "X", Value: "cfut_" + strings.Repeat("aB3", 14)})
				},
				"an old-style token": func(m *manifests) {
					container(m).Env = append(container(m).Env, corev1.EnvVar{Name: "X", Value: strings.Repeat("aB3", 14)})
				},
				"envFrom": func(m *manifests) {
					container(m).EnvFrom = []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "s"}}}}
				},
			},
		},
		{
			name: "deployment: small resource requests and limits",
			check: on(broker, func(_ *corev1.PodSpec, c *corev1.Container) error {
				r := c.Resources
				for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
					req, okReq := r.Requests[name]
					lim, okLim := r.Limits[name]
					if !okReq || !okLim {
						return fmt.Errorf("deployment: %s: want both a request and a limit", name)
					}
					if req.Sign() <= 0 || req.Cmp(lim) > 0 {
						return fmt.Errorf("deployment: %s: request %s, limit %s", name, req.String(), lim.String())
					}
				}
				if lim := r.Limits[corev1.ResourceMemory]; lim.Cmp(resource.MustParse(maxMemoryLimit)) > 0 {
					return fmt.Errorf("deployment: memory limit %s: the broker is a few MB, keep it at most %s", lim.String(), maxMemoryLimit)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"no limits":         func(m *manifests) { container(m).Resources.Limits = nil },
				"no memory request": func(m *manifests) { delete(container(m).Resources.Requests, corev1.ResourceMemory) },
				"request > limit":   func(m *manifests) { container(m).Resources.Requests[corev1.ResourceCPU] = resource.MustParse("2") },
				"zero request":      func(m *manifests) { container(m).Resources.Requests[corev1.ResourceCPU] = resource.MustParse("0") },
				"big":               func(m *manifests) { container(m).Resources.Limits[corev1.ResourceMemory] = resource.MustParse("2Gi") },
			},
		},
		{
			name: "deployment: the grace period covers the preStop wait and the broker's drain",
			check: on(broker, func(pod *corev1.PodSpec, c *corev1.Container) error {
				if pod.TerminationGracePeriodSeconds == nil {
					return errors.New("deployment: terminationGracePeriodSeconds unset (Kubernetes' 30 s default)")
				}
				grace := time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
				var wait time.Duration
				if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
					ps := c.Lifecycle.PreStop
					if ps.Sleep == nil || ps.Exec != nil || ps.HTTPGet != nil {
						// The image has no shell: an exec hook cannot run there.
						return errors.New("deployment: preStop: want a sleep action only")
					}
					wait = time.Duration(ps.Sleep.Seconds) * time.Second
				}
				drain, err := drainOf(c.Args)
				if err != nil {
					return fmt.Errorf("deployment: %w", err)
				}
				if grace <= wait+drain {
					return fmt.Errorf("deployment: terminationGracePeriodSeconds %v: want more than the preStop wait %v + the broker's --drain %v", grace, wait, drain)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"default grace": func(m *manifests) { m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = nil },
				"short grace":   func(m *manifests) { m.deployment.Spec.Template.Spec.TerminationGracePeriodSeconds = ptr[int64](12) },
				"long wait":     func(m *manifests) { container(m).Lifecycle.PreStop.Sleep.Seconds = 55 },
				"long drain":    func(m *manifests) { container(m).Args[4] = "--drain=1m" },
				"exec hook": func(m *manifests) {
					container(m).Lifecycle.PreStop.Exec = &corev1.ExecAction{Command: []string{"sleep", "5"}}
				},
			},
		},
		{
			name: "deployment: a rollout never takes a serving pod away before its successor is ready",
			check: func(m *manifests) error {
				s := m.deployment.Spec.Strategy
				if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil || s.RollingUpdate.MaxUnavailable == nil {
					return errors.New("deployment: strategy: want RollingUpdate with maxUnavailable")
				}
				if mu := *s.RollingUpdate.MaxUnavailable; mu.String() != "0" && mu.String() != "0%" {
					return fmt.Errorf("deployment: maxUnavailable %s, want 0", mu.String())
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"one unavailable": func(m *manifests) {
					m.deployment.Spec.Strategy.RollingUpdate.MaxUnavailable = ptr(intstr.FromInt32(1))
				},
				"recreate": func(m *manifests) {
					m.deployment.Spec.Strategy = appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType}
				},
			},
		},
		{
			name: "deployment: the selector selects the pod template",
			check: func(m *manifests) error {
				return checkLabelsSelect("deployment", m.deployment.Spec.Selector, m.deployment.Spec.Template.Labels)
			},
			breaks: map[string]func(*manifests){
				"template label": func(m *manifests) { m.deployment.Spec.Template.Labels["app.kubernetes.io/component"] = "api" },
				"no selector":    func(m *manifests) { m.deployment.Spec.Selector = nil },
			},
		},
		{
			name: "service: ClusterIP, port 80 to the container's named port",
			check: func(m *manifests) error {
				s := m.service.Spec
				if s.Type != corev1.ServiceTypeClusterIP {
					return fmt.Errorf("service: type %q, want ClusterIP (reach it through an ingress)", s.Type)
				}
				if len(s.Ports) != 1 {
					return fmt.Errorf("service: %d ports, want 1", len(s.Ports))
				}
				p := s.Ports[0]
				if p.Port != 80 || p.Protocol != corev1.ProtocolTCP {
					return fmt.Errorf("service: port %d/%s, want 80/TCP", p.Port, p.Protocol)
				}
				if p.TargetPort.Type != intstr.String || p.TargetPort.StrVal != brokerPortName {
					return fmt.Errorf("service: targetPort %s, want the named port %q", p.TargetPort.String(), brokerPortName)
				}
				_, c, err := broker(m)
				if err != nil {
					return err
				}
				if _, err := namedPort(c, p.TargetPort.StrVal); err != nil {
					return fmt.Errorf("service: targetPort: %w", err)
				}
				return checkLabelsSelect("service", &metav1.LabelSelector{MatchLabels: s.Selector}, m.deployment.Spec.Template.Labels)
			},
			breaks: map[string]func(*manifests){
				"numeric target": func(m *manifests) { m.service.Spec.Ports[0].TargetPort = intstr.FromInt32(8080) },
				"unknown target": func(m *manifests) { m.service.Spec.Ports[0].TargetPort = intstr.FromString("metrics") },
				"port renamed":   func(m *manifests) { container(m).Ports[0].Name = "web" },
				"port 8080":      func(m *manifests) { m.service.Spec.Ports[0].Port = 8080 },
				"node port":      func(m *manifests) { m.service.Spec.Type = corev1.ServiceTypeNodePort },
				"load balancer":  func(m *manifests) { m.service.Spec.Type = corev1.ServiceTypeLoadBalancer },
				"selector":       func(m *manifests) { m.service.Spec.Selector["app.kubernetes.io/name"] = "broker" },
				"no selector":    func(m *manifests) { m.service.Spec.Selector = nil },
			},
		},
		{
			name: "pdb: one pod always available, and a drain still possible",
			check: func(m *manifests) error {
				s := m.pdb.Spec
				if s.MinAvailable == nil || s.MinAvailable.String() != "1" || s.MaxUnavailable != nil {
					return errors.New("pdb: want minAvailable 1 (and no maxUnavailable)")
				}
				if r := m.deployment.Spec.Replicas; r == nil || *r <= 1 {
					return errors.New("pdb: minAvailable 1 with one replica blocks every drain")
				}
				if p := s.UnhealthyPodEvictionPolicy; p == nil || *p != policyv1.AlwaysAllow {
					return errors.New("pdb: unhealthyPodEvictionPolicy: want AlwaysAllow, so an unready pod never blocks a drain")
				}
				return checkLabelsSelect("pdb", s.Selector, m.deployment.Spec.Template.Labels)
			},
			breaks: map[string]func(*manifests){
				"two":           func(m *manifests) { m.pdb.Spec.MinAvailable = ptr(intstr.FromInt32(2)) },
				"percent":       func(m *manifests) { m.pdb.Spec.MinAvailable = ptr(intstr.FromString("50%")) },
				"one replica":   func(m *manifests) { m.deployment.Spec.Replicas = ptr[int32](1) },
				"selector":      func(m *manifests) { m.pdb.Spec.Selector.MatchLabels["app.kubernetes.io/component"] = "api" },
				"unavailable":   func(m *manifests) { m.pdb.Spec.MaxUnavailable = ptr(intstr.FromInt32(1)) },
				"no min at all": func(m *manifests) { m.pdb.Spec.MinAvailable = nil },
				"unhealthy pods protected": func(m *manifests) {
					m.pdb.Spec.UnhealthyPodEvictionPolicy = ptr(policyv1.IfHealthyBudget)
				},
			},
		},
		{
			name: "kustomization: lists every manifest in the directory but the Secret example",
			check: func(m *manifests) error {
				var want []string
				for _, f := range m.files {
					if f != kustomizationFile && f != secretFile {
						want = append(want, f)
					}
				}
				got := slices.Clone(m.kustomization.Resources)
				sort.Strings(got)
				if slices.Contains(got, secretFile) {
					return fmt.Errorf("kustomization: lists %s: applying it would replace the real parent token with the placeholder", secretFile)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					return fmt.Errorf("kustomization: resources (-want +got):\n%s", diff)
				}
				for _, r := range got {
					if path.Base(r) != r {
						return fmt.Errorf("kustomization: resource %q is not a file beside it", r)
					}
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"one forgotten": func(m *manifests) {
					m.kustomization.Resources = slices.DeleteFunc(m.kustomization.Resources, func(r string) bool { return r == pdbFile })
				},
				"secret listed": func(m *manifests) {
					m.kustomization.Resources = append(m.kustomization.Resources, secretFile)
				},
				"a file that is not there": func(m *manifests) {
					m.kustomization.Resources = append(m.kustomization.Resources, "ingress.yaml")
				},
				"a new file not listed": func(m *manifests) { m.files = append(m.files, "ingress.yaml") },
				"listed twice": func(m *manifests) {
					m.kustomization.Resources = append(m.kustomization.Resources, deploymentFile)
				},
			},
		},
		{
			name: "kustomization: its image entry rewrites the broker's image, its namespace is the Namespace",
			check: func(m *manifests) error {
				k := m.kustomization
				if k.Namespace == "" || k.Namespace != m.namespace.Name {
					return fmt.Errorf("kustomization: namespace %q, %s creates %q", k.Namespace, namespaceFile, m.namespace.Name)
				}
				if k.NamePrefix != "" || k.NameSuffix != "" {
					return errors.New("kustomization: a name prefix or suffix would rename what README.md's commands name")
				}
				_, c, err := broker(m)
				if err != nil {
					return err
				}
				if len(k.Images) != 1 {
					return fmt.Errorf("kustomization: %d images, want 1", len(k.Images))
				}
				img := k.Images[0]
				if name := imageName(c.Image); img.Name != name {
					return fmt.Errorf("kustomization: images[0].name %q does not match the container's image %q: it would change nothing", img.Name, name)
				}
				newImage := img.Name
				if img.NewName != "" {
					newImage = img.NewName
				}
				switch {
				case img.Digest != "":
					newImage += "@" + img.Digest
				case img.NewTag != "":
					newImage += ":" + img.NewTag
				}
				return checkImage(newImage, imageRepository)
			},
			breaks: map[string]func(*manifests){
				"image name":     func(m *manifests) { m.kustomization.Images[0].Name = "cf-scoped-token" },
				"new name":       func(m *manifests) { m.kustomization.Images[0].NewName = "ghcr.io/someone/else" },
				"latest":         func(m *manifests) { m.kustomization.Images[0].NewTag = "latest" },
				"namespace":      func(m *manifests) { m.kustomization.Namespace = "default" },
				"no namespace":   func(m *manifests) { m.kustomization.Namespace = "" },
				"prefix":         func(m *manifests) { m.kustomization.NamePrefix = "prod-" },
				"namespace name": func(m *manifests) { m.namespace.Name = "broker" },
			},
		},
		{
			name: "namespace: enforces the restricted Pod Security Standard",
			check: func(m *manifests) error {
				if got := m.namespace.Labels["pod-security.kubernetes.io/enforce"]; got != "restricted" {
					return fmt.Errorf("namespace: pod-security.kubernetes.io/enforce %q, want restricted", got)
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"baseline": func(m *manifests) { m.namespace.Labels["pod-security.kubernetes.io/enforce"] = "baseline" },
				"none":     func(m *manifests) { delete(m.namespace.Labels, "pod-security.kubernetes.io/enforce") },
			},
		},
		{
			name: "secret: an example, with a placeholder that is no token",
			check: func(m *manifests) error {
				s := m.secret
				if len(s.Data) > 0 {
					return errors.New("secret: data (base64) would hide what the example holds: use stringData")
				}
				if len(s.StringData) != 1 {
					return fmt.Errorf("secret: %d keys, want the parent token's only", len(s.StringData))
				}
				for k, v := range s.StringData {
					if !placeholder.MatchString(v) {
						return fmt.Errorf("secret: %s: the placeholder %q does not say to replace it", k, v)
					}
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"new-style token": func(m *manifests) { m.secret.StringData["api-token"] = "cfat_replace-me" },
				"old-style token": func(m *manifests) {
					m.secret.StringData["api-token"] = "replace-me-" + strings.Repeat("aB3", 14)
				},
				"silent placeholder": func(m *manifests) { m.secret.StringData["api-token"] = "x" },
				"base64 data":        func(m *manifests) { m.secret.Data = map[string][]byte{"api-token": []byte("x")} },
				"second key":         func(m *manifests) { m.secret.StringData["other"] = "replace-me" },
			},
		},
		{
			name: "configmap: a GitHub-only policy for a broker behind an ingress",
			check: func(m *manifests) error {
				text, ok := m.configMap.Data["policy.yaml"]
				if !ok {
					return errors.New("configmap: no policy.yaml key")
				}
				if len(m.configMap.Data) != 1 || len(m.configMap.BinaryData) > 0 {
					return errors.New("configmap: want the policy only")
				}
				return checkPolicy(text)
			},
			breaks: map[string]func(*manifests){
				"unknown key": func(m *manifests) { editPolicy(m, [2]string{"rules:", "rule:"}) },
				"second issuer": func(m *manifests) {
					editPolicy(m, [2]string{"  github: https://token.actions.githubusercontent.com",
						"  github: https://token.actions.githubusercontent.com\n  gitlab: https://gitlab.com"})
				},
				"plain http audience": func(m *manifests) { editPolicy(m, [2]string{"audience: https://", "audience: http://"}) },
				"caller": func(m *manifests) {
					editPolicy(m, [2]string{"max-ttl: 1h", "max-ttl: 1h\n      allowed-ips: [caller]"})
				},
				"second key": func(m *manifests) { m.configMap.Data["extra.yaml"] = "" },
			},
		},
	}
}

// editPolicy edits the policy text in the ConfigMap: each pair replaces its first string by its
// second.
func editPolicy(m *manifests, edits ...[2]string) {
	text := m.configMap.Data["policy.yaml"]
	for _, e := range edits {
		replaceIn(&text, e[0], e[1])
	}
	m.configMap.Data["policy.yaml"] = text
}

// imageName is an image reference without its tag or digest.
func imageName(ref string) string {
	if i := strings.Index(ref, "@"); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

var (
	// tagPattern is a tag release.yml pushes: vX.Y.Z (it pushes no moving major tag).
	tagPattern    = regexp.MustCompile(`^v\d+\.\d+\.\d+$`)
	digestPattern = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// checkImage asserts ref is repo with a tag other than latest, or a well-formed digest.
func checkImage(ref, repo string) error {
	if name := imageName(ref); name != repo {
		return fmt.Errorf("image %q: want %s", ref, repo)
	}
	rest := strings.TrimPrefix(ref, repo)
	switch {
	case strings.HasPrefix(rest, "@"):
		if !digestPattern.MatchString(rest[1:]) {
			return fmt.Errorf("image %q: malformed digest", ref)
		}
	case strings.HasPrefix(rest, ":"):
		tag := rest[1:]
		if strings.Contains(tag, "@") {
			tag, _, _ = strings.Cut(tag, "@")
		}
		if !tagPattern.MatchString(tag) {
			return fmt.Errorf("image %q: want a release tag (vX.Y.Z, as release.yml pushes) or a digest, not %q", ref, tag)
		}
	default:
		return fmt.Errorf("image %q: no tag or digest", ref)
	}
	return nil
}
