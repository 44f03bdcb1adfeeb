package deploy

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-cmp/cmp"
	run "google.golang.org/api/run/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Annotations Cloud Run accepts, by the resource that may carry them (the doc of ObjectMeta.
// Annotations in google.golang.org/api/run/v1). Annotations are free-form to the decoder, so a
// misspelt or misplaced one ("autoscaling.knative.dev/minscale", minScale on the Service) would
// otherwise pass unnoticed and change nothing.
var (
	serviceAnnotations = []string{
		"run.googleapis.com/base-images", "run.googleapis.com/binary-authorization",
		"run.googleapis.com/binary-authorization-breakglass", "run.googleapis.com/client-name",
		"run.googleapis.com/custom-audiences", "run.googleapis.com/default-url-disabled",
		"run.googleapis.com/description", "run.googleapis.com/gc-traffic-tags",
		"run.googleapis.com/ingress", "run.googleapis.com/invoker-iam-disabled",
		"run.googleapis.com/launch-stage", "run.googleapis.com/minScale", "run.googleapis.com/maxScale",
		"run.googleapis.com/manualInstanceCount", "run.googleapis.com/scalingMode",
	}
	revisionAnnotations = []string{
		"autoscaling.knative.dev/maxScale", "autoscaling.knative.dev/minScale",
		"run.googleapis.com/base-images", "run.googleapis.com/client-name",
		"run.googleapis.com/cloudsql-instances", "run.googleapis.com/container-dependencies",
		"run.googleapis.com/cpu-throttling", "run.googleapis.com/encryption-key",
		"run.googleapis.com/encryption-key-shutdown-hours", "run.googleapis.com/execution-environment",
		"run.googleapis.com/gpu-zonal-redundancy-disabled", "run.googleapis.com/health-check-disabled",
		"run.googleapis.com/network-interfaces", "run.googleapis.com/post-key-revocation-action-type",
		"run.googleapis.com/secrets", "run.googleapis.com/secure-session-agent",
		"run.googleapis.com/sessionAffinity", "run.googleapis.com/startup-cpu-boost",
		"run.googleapis.com/vpc-access-connector", "run.googleapis.com/vpc-access-egress",
	}
)

// cloudRunImageName is the release image as an Artifact Registry remote repository named ghcr
// serves it (Cloud Run pulls from Artifact Registry, not from ghcr.io).
var cloudRunImageName = regexp.MustCompile(`^(REGION|[a-z]+-[a-z]+[0-9]+)-docker\.pkg\.dev/(PROJECT_ID|[a-z][a-z0-9-]{4,28}[a-z0-9])/ghcr/` +
	regexp.QuoteMeta(strings.TrimPrefix(imageRepository, "ghcr.io/")) + `$`)

// serviceAccount matches the email of a service account the project made (not the default compute
// account, which may read every secret of the project); PROJECT_ID is the placeholder.
var serviceAccount = regexp.MustCompile(`^[a-z][a-z0-9-]{4,28}[a-z0-9]@(PROJECT_ID|[a-z][a-z0-9-]{4,28}[a-z0-9])\.iam\.gserviceaccount\.com$`)

// revision returns the Cloud Run revision template's spec and its one container, named broker.
func revision(m *manifests) (*run.RevisionSpec, *run.Container, error) {
	s := m.cloudRun
	if s.Spec == nil || s.Spec.Template == nil || s.Spec.Template.Spec == nil {
		return nil, nil, errors.New("cloud run: no spec.template.spec")
	}
	rs := s.Spec.Template.Spec
	if len(rs.Containers) != 1 || rs.Containers[0] == nil || rs.Containers[0].Name != "broker" {
		return nil, nil, fmt.Errorf("cloud run: want one container, named broker; have %d", len(rs.Containers))
	}
	return rs, rs.Containers[0], nil
}

// crContainer returns the broker container, for the mutations; the checks use revision.
func crContainer(m *manifests) *run.Container { return m.cloudRun.Spec.Template.Spec.Containers[0] }

func crVolume(m *manifests, name string) *run.Volume {
	for _, v := range m.cloudRun.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return v
		}
	}
	panic("mutation: no volume " + name)
}

func revisionAnnotationsOf(m *manifests) map[string]string {
	if md := m.cloudRun.Spec.Template.Metadata; md != nil {
		return md.Annotations
	}
	return nil
}

// crPort returns the container's one port.
func crPort(c *run.Container) (*run.ContainerPort, error) {
	if len(c.Ports) != 1 || c.Ports[0] == nil {
		return nil, fmt.Errorf("cloud run: %d container ports, want 1", len(c.Ports))
	}
	return c.Ports[0], nil
}

// checkCRProbe asserts that p is an HTTP GET of path on the container's port.
func checkCRProbe(kind string, p *run.Probe, wantPath string, c *run.Container) error {
	if p == nil || p.HttpGet == nil {
		return fmt.Errorf("cloud run: %s probe: want an HTTP GET", kind)
	}
	if p.HttpGet.Path != wantPath {
		return fmt.Errorf("cloud run: %s probe: path %q, want %q", kind, p.HttpGet.Path, wantPath)
	}
	port, err := crPort(c)
	if err != nil {
		return err
	}
	if p.HttpGet.Port != 0 && p.HttpGet.Port != port.ContainerPort {
		return fmt.Errorf("cloud run: %s probe: port %d, the container listens on %d", kind, p.HttpGet.Port, port.ContainerPort)
	}
	if p.TimeoutSeconds > p.PeriodSeconds && p.PeriodSeconds != 0 {
		return fmt.Errorf("cloud run: %s probe: timeout %ds longer than the period %ds", kind, p.TimeoutSeconds, p.PeriodSeconds)
	}
	return nil
}

// secretVersion matches a Secret Manager version as a mounted item's key: latest or a number.
var secretVersion = regexp.MustCompile(`^(latest|[1-9][0-9]*)$`)

// crFileAt resolves path in the container to the Secret Manager secret mounted there.
func crFileAt(rs *run.RevisionSpec, c *run.Container, file string) (mount *run.VolumeMount, secret, version string, err error) {
	for _, vm := range c.VolumeMounts {
		if vm != nil && strings.HasPrefix(file, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			if mount == nil || len(vm.MountPath) > len(mount.MountPath) {
				mount = vm
			}
		}
	}
	if mount == nil {
		return nil, "", "", fmt.Errorf("cloud run: %s: no volume is mounted there", file)
	}
	rel := strings.TrimPrefix(file, strings.TrimSuffix(mount.MountPath, "/")+"/")
	var vol *run.Volume
	for _, v := range rs.Volumes {
		if v != nil && v.Name == mount.Name {
			vol = v
		}
	}
	if vol == nil || vol.Secret == nil || vol.Secret.SecretName == "" {
		return nil, "", "", fmt.Errorf("cloud run: %s: volume %q is not a Secret Manager secret", file, mount.Name)
	}
	if len(vol.Secret.Items) == 0 {
		// Without items the file is named after the secret and holds its latest version.
		if rel != vol.Secret.SecretName {
			return nil, "", "", fmt.Errorf("cloud run: %s: volume %q holds only the file %q", file, vol.Name, vol.Secret.SecretName)
		}
		return mount, vol.Secret.SecretName, "latest", nil
	}
	for _, it := range vol.Secret.Items {
		if it != nil && it.Path == rel {
			if !secretVersion.MatchString(it.Key) {
				return nil, "", "", fmt.Errorf("cloud run: %s: key %q is not a secret version (latest or a number)", file, it.Key)
			}
			return mount, vol.Secret.SecretName, it.Key, nil
		}
	}
	return nil, "", "", fmt.Errorf("cloud run: %s: volume %q maps no version to %q", file, vol.Name, rel)
}

// brokerAttemptTimeout is the broker client's bound on one attempt, which Cloud Run's request
// timeout must not cut short: internal/broker's DefaultRetry().Timeout, attemptTimeout of the
// exchange deadline (2m, exchangeDeadline) plus the clean-up grace (DefaultGrace, 1.5s) plus an
// eighth of the deadline. This module does not import the product (it is a module of its own),
// so the value is written out here; internal/broker's TestCloudRunTimeoutCoversAttempt holds the
// manifest to the real one.
const brokerAttemptTimeout = 2*time.Minute + 1500*time.Millisecond + 2*time.Minute/8

// cloudRunStopGrace is how long Cloud Run waits after SIGTERM before it kills an instance.
const cloudRunStopGrace = 10 * time.Second

func cloudRunPromises() []promise {
	return []promise{
		{
			name: "cloud run: the same command line as Kubernetes, the release image",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				if len(c.Command) > 0 {
					return fmt.Errorf("cloud run: command %q replaces the image's entrypoint", c.Command)
				}
				if diff := cmp.Diff(wantArgs(), c.Args); diff != "" {
					return fmt.Errorf("cloud run: args (-want +got):\n%s", diff)
				}
				name := imageName(c.Image)
				if !cloudRunImageName.MatchString(name) {
					return fmt.Errorf("cloud run: image %q: want the release image through the ghcr remote repository", c.Image)
				}
				return checkImage(c.Image, name)
			}),
			breaks: map[string]func(*manifests){
				"listen":      func(m *manifests) { crContainer(m).Args[2] = "--listen=127.0.0.1:8080" },
				"token flag":  func(m *manifests) { crContainer(m).Args[3] = "--api-token=x" },
				"command":     func(m *manifests) { crContainer(m).Command = []string{"/bin/sh"} },
				"from ghcr":   func(m *manifests) { crContainer(m).Image = imageRepository + ":v1" },
				"other image": func(m *manifests) { crContainer(m).Image = "REGION-docker.pkg.dev/PROJECT_ID/ghcr/x/y:v1" },
				"latest": func(m *manifests) {
					c := crContainer(m)
					c.Image = imageName(c.Image) + ":latest"
				},
			},
		},
		{
			name: "cloud run: the broker stops within the 10 s Cloud Run allows after SIGTERM",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				drain, err := drainOf(c.Args)
				if err != nil {
					return fmt.Errorf("cloud run: %w", err)
				}
				if drain >= cloudRunStopGrace {
					return fmt.Errorf("cloud run: --drain %v: Cloud Run kills the instance %v after SIGTERM; a mint cut off then would leave its token", drain, cloudRunStopGrace)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"no drain":   func(m *manifests) { crContainer(m).Args = crContainer(m).Args[:4] },
				"long drain": func(m *manifests) { crContainer(m).Args[4] = "--drain=10s" },
			},
		},
		{
			name: "cloud run: traffic goes to the --listen port, as $PORT",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				listen, err := listenPort(c.Args)
				if err != nil {
					return err
				}
				p, err := crPort(c)
				if err != nil {
					return err
				}
				if int(p.ContainerPort) != listen {
					return fmt.Errorf("cloud run: containerPort %d (Cloud Run's $PORT), --listen says %d", p.ContainerPort, listen)
				}
				// Cloud Run's port names: http1, or h2c for end-to-end HTTP/2 (which the broker does not speak).
				if p.Name != "http1" {
					return fmt.Errorf("cloud run: port name %q, want http1", p.Name)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"container port": func(m *manifests) { crContainer(m).Ports[0].ContainerPort = 9090 },
				"h2c":            func(m *manifests) { crContainer(m).Ports[0].Name = "h2c" },
				"no port":        func(m *manifests) { crContainer(m).Ports = nil },
			},
		},
		{
			name: "cloud run: startup waits for /readyz, liveness is /healthz",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				if err := checkCRProbe("startup", c.StartupProbe, "/readyz", c); err != nil {
					return err
				}
				return checkCRProbe("liveness", c.LivenessProbe, "/healthz", c)
			}),
			breaks: map[string]func(*manifests){
				"startup path":  func(m *manifests) { crContainer(m).StartupProbe.HttpGet.Path = "/healthz" },
				"no startup":    func(m *manifests) { crContainer(m).StartupProbe = nil },
				"liveness path": func(m *manifests) { crContainer(m).LivenessProbe.HttpGet.Path = "/readyz" },
				"no liveness":   func(m *manifests) { crContainer(m).LivenessProbe = nil },
				"liveness port": func(m *manifests) { crContainer(m).LivenessProbe.HttpGet.Port = 9090 },
				"tcp startup":   func(m *manifests) { crContainer(m).StartupProbe.HttpGet = nil },
				"slow timeout":  func(m *manifests) { crContainer(m).LivenessProbe.TimeoutSeconds = 60 },
			},
		},
		{
			name: "cloud run: the parent token and the policy are read-only Secret Manager files at their flags",
			check: on(revision, func(rs *run.RevisionSpec, c *run.Container) error {
				seen := map[string]string{}
				for _, flag := range []string{"api-token-file", "policy"} {
					file, err := flagValue(c.Args, flag)
					if err != nil {
						return err
					}
					mount, secret, _, err := crFileAt(rs, c, file)
					if err != nil {
						return err
					}
					if !mount.ReadOnly {
						return fmt.Errorf("cloud run: %s: volume mount %q is not readOnly", file, mount.Name)
					}
					if other, ok := seen[secret]; ok {
						return fmt.Errorf("cloud run: --%s and --%s read the same secret %q", other, flag, secret)
					}
					seen[secret] = flag
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"writable token":  func(m *manifests) { crContainer(m).VolumeMounts[1].ReadOnly = false },
				"writable policy": func(m *manifests) { crContainer(m).VolumeMounts[0].ReadOnly = false },
				"token file name": func(m *manifests) { crVolume(m, "parent-token").Secret.Items[0].Path = "token" },
				"policy dir":      func(m *manifests) { crContainer(m).VolumeMounts[0].MountPath = "/etc/cf" },
				"bad version":     func(m *manifests) { crVolume(m, "policy").Secret.Items[0].Key = "policy.yaml" },
				"no secret name":  func(m *manifests) { crVolume(m, "parent-token").Secret.SecretName = "" },
				"same secret": func(m *manifests) {
					crVolume(m, "policy").Secret.SecretName = crVolume(m, "parent-token").Secret.SecretName
				},
				"not a secret": func(m *manifests) {
					v := crVolume(m, "parent-token")
					v.Secret, v.EmptyDir = nil, &run.EmptyDirVolumeSource{}
				},
				"no items, other name": func(m *manifests) { crVolume(m, "parent-token").Secret.Items = nil },
			},
		},
		{
			name: "cloud run: no environment variable holds a token",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				if len(c.EnvFrom) > 0 {
					return errors.New("cloud run: envFrom imports whole secrets into the environment")
				}
				for _, e := range c.Env {
					switch {
					case e == nil:
					case secretish.MatchString(e.Name):
						return fmt.Errorf("cloud run: env %s: a credential's name", e.Name)
					case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
						return fmt.Errorf("cloud run: env %s: taken from Secret Manager", e.Name)
					case !allowedEnv[e.Name]:
						return fmt.Errorf("cloud run: env %s: not one of the variables the broker may be given", e.Name)
					}
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"parent in env": func(m *manifests) {
					crContainer(m).Env = append(crContainer(m).Env, &run.EnvVar{Name: "CF_SCOPED_TOKEN_API_TOKEN",
						ValueFrom: &run.EnvVarSource{SecretKeyRef: &run.SecretKeySelector{Name: "cf-scoped-token-parent", Key: "latest"}}})
				},
				"any secret": func(m *manifests) {
					crContainer(m).Env = append(crContainer(m).Env, &run.EnvVar{Name: "X",
						ValueFrom: &run.EnvVarSource{SecretKeyRef: &run.SecretKeySelector{Name: "s", Key: "1"}}})
				},
				"a token literal": func(m *manifests) {
					crContainer(m).Env = append(crContainer(m).Env, &run.EnvVar{Name: "X", Value: "cfat_" + strings.Repeat("aB3", 14)})
				},
			},
		},
		{
			name: "cloud run: always one instance, a few at most, CPU between requests, concurrency set",
			check: func(m *manifests) error {
				rs, _, err := revision(m)
				if err != nil {
					return err
				}
				a := revisionAnnotationsOf(m)
				minScale, err := strconv.Atoi(a["autoscaling.knative.dev/minScale"])
				if err != nil || minScale < 1 {
					return fmt.Errorf("cloud run: minScale %q: want at least 1 (the sweep timer and the caches)", a["autoscaling.knative.dev/minScale"])
				}
				maxScale, err := strconv.Atoi(a["autoscaling.knative.dev/maxScale"])
				if err != nil || maxScale < minScale || maxScale > 10 {
					return fmt.Errorf("cloud run: maxScale %q: want from minScale to 10 (every instance keeps its own rate limits)", a["autoscaling.knative.dev/maxScale"])
				}
				if a["run.googleapis.com/cpu-throttling"] != "false" {
					return errors.New(`cloud run: run.googleapis.com/cpu-throttling: want "false", or the sweep timer stalls between requests`)
				}
				if rs.ContainerConcurrency < 1 || rs.ContainerConcurrency > 1000 {
					return fmt.Errorf("cloud run: containerConcurrency %d: want 1 to 1000", rs.ContainerConcurrency)
				}
				if rs.TimeoutSeconds > 3600 || time.Duration(rs.TimeoutSeconds)*time.Second < brokerAttemptTimeout {
					return fmt.Errorf("cloud run: timeoutSeconds %d: want %v (the broker client's bound on one attempt) to 3600; a request cut off sooner is retried with an OIDC token the broker refuses as a replay", rs.TimeoutSeconds, brokerAttemptTimeout)
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"scale to zero":          func(m *manifests) { revisionAnnotationsOf(m)["autoscaling.knative.dev/minScale"] = "0" },
				"no max":                 func(m *manifests) { delete(revisionAnnotationsOf(m), "autoscaling.knative.dev/maxScale") },
				"max < min":              func(m *manifests) { revisionAnnotationsOf(m)["autoscaling.knative.dev/minScale"] = "5" },
				"many":                   func(m *manifests) { revisionAnnotationsOf(m)["autoscaling.knative.dev/maxScale"] = "100" },
				"throttled":              func(m *manifests) { revisionAnnotationsOf(m)["run.googleapis.com/cpu-throttling"] = "true" },
				"concurrency":            func(m *manifests) { m.cloudRun.Spec.Template.Spec.ContainerConcurrency = 0 },
				"timeout":                func(m *manifests) { m.cloudRun.Spec.Template.Spec.TimeoutSeconds = 0 },
				"exchange deadline only": func(m *manifests) { m.cloudRun.Spec.Template.Spec.TimeoutSeconds = 120 },
				"over an hour":           func(m *manifests) { m.cloudRun.Spec.Template.Spec.TimeoutSeconds = 3601 },
			},
		},
		{
			name: "cloud run: 1 vCPU (Cloud Run's minimum for concurrency) and a memory limit",
			check: on(revision, func(_ *run.RevisionSpec, c *run.Container) error {
				if c.Resources == nil {
					return errors.New("cloud run: no resources")
				}
				cpu, err := resource.ParseQuantity(c.Resources.Limits["cpu"])
				if err != nil || cpu.Cmp(resource.MustParse("1")) < 0 {
					return fmt.Errorf("cloud run: cpu limit %q: below 1 vCPU Cloud Run allows no concurrency", c.Resources.Limits["cpu"])
				}
				if _, err := resource.ParseQuantity(c.Resources.Limits["memory"]); err != nil {
					return fmt.Errorf("cloud run: memory limit %q: %w", c.Resources.Limits["memory"], err)
				}
				return nil
			}),
			breaks: map[string]func(*manifests){
				"half a cpu": func(m *manifests) { crContainer(m).Resources.Limits["cpu"] = "500m" },
				"no memory":  func(m *manifests) { delete(crContainer(m).Resources.Limits, "memory") },
				"none":       func(m *manifests) { crContainer(m).Resources = nil },
			},
		},
		{
			name: "cloud run: public ingress, no IAM invoker check, a service account of its own",
			check: func(m *manifests) error {
				if m.cloudRun.Metadata == nil {
					return errors.New("cloud run: no metadata")
				}
				a := m.cloudRun.Metadata.Annotations
				switch a["run.googleapis.com/ingress"] {
				case "all", "internal-and-cloud-load-balancing":
				default:
					return fmt.Errorf("cloud run: run.googleapis.com/ingress %q: CI runners must reach it (all, or internal-and-cloud-load-balancing behind a load balancer)", a["run.googleapis.com/ingress"])
				}
				if a["run.googleapis.com/invoker-iam-disabled"] != "true" {
					return errors.New("cloud run: run.googleapis.com/invoker-iam-disabled: CI jobs hold no Google credential; the broker authenticates them")
				}
				rs, _, err := revision(m)
				if err != nil {
					return err
				}
				if !serviceAccount.MatchString(rs.ServiceAccountName) {
					return fmt.Errorf("cloud run: serviceAccountName %q: want a service account of the broker's own (NAME@PROJECT_ID.iam.gserviceaccount.com)", rs.ServiceAccountName)
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"no ingress":  func(m *manifests) { delete(m.cloudRun.Metadata.Annotations, "run.googleapis.com/ingress") },
				"internal":    func(m *manifests) { m.cloudRun.Metadata.Annotations["run.googleapis.com/ingress"] = "internal" },
				"iam invoker": func(m *manifests) { delete(m.cloudRun.Metadata.Annotations, "run.googleapis.com/invoker-iam-disabled") },
				"no account":  func(m *manifests) { m.cloudRun.Spec.Template.Spec.ServiceAccountName = "" },
				"default compute": func(m *manifests) {
					m.cloudRun.Spec.Template.Spec.ServiceAccountName = "123456789-compute@developer.gserviceaccount.com"
				},
			},
		},
		{
			name: "cloud run: every annotation is one Cloud Run accepts where it stands",
			check: func(m *manifests) error {
				if m.cloudRun.Metadata != nil {
					for k := range m.cloudRun.Metadata.Annotations {
						if !slices.Contains(serviceAnnotations, k) {
							return fmt.Errorf("cloud run: service annotation %q: not one Cloud Run accepts on a Service", k)
						}
					}
				}
				for k := range revisionAnnotationsOf(m) {
					if !slices.Contains(revisionAnnotations, k) {
						return fmt.Errorf("cloud run: revision annotation %q: not one Cloud Run accepts on a Revision", k)
					}
				}
				return nil
			},
			breaks: map[string]func(*manifests){
				"letter case": func(m *manifests) {
					a := revisionAnnotationsOf(m)
					a["autoscaling.knative.dev/minscale"] = a["autoscaling.knative.dev/minScale"]
					delete(a, "autoscaling.knative.dev/minScale")
				},
				"revision annotation on the service": func(m *manifests) {
					m.cloudRun.Metadata.Annotations["autoscaling.knative.dev/minScale"] = "1"
				},
				"service annotation on the revision": func(m *manifests) {
					revisionAnnotationsOf(m)["run.googleapis.com/ingress"] = "all"
				},
			},
		},
	}
}
