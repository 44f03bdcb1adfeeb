// Package deploy holds the broker's deployment manifests (kubernetes/, cloud-run/) and the tests
// that keep them honest. It is a module of its own so that the Kubernetes and Google API types the
// tests decode into never become dependencies of the product.
//
// The tests decode every manifest strictly into the official API types (an unknown, misspelt or
// wrongly capitalised field fails), then assert what the broker needs from its deployment. Each
// assertion is also run against mutated copies of the manifests, each of which it must reject, so
// that no assertion can pass by being unable to fail.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	run "google.golang.org/api/run/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Where the manifests live, relative to this directory.
const (
	kubernetesDir = "kubernetes"
	cloudRunFile  = "cloud-run/service.yaml"
)

// The Kubernetes manifests by file name. kustomization.yaml is every other file's index;
// secret.yaml is an example that the kustomization must not apply (it would overwrite the real
// parent token with its placeholder).
const (
	namespaceFile     = "namespace.yaml"
	configMapFile     = "configmap.yaml"
	deploymentFile    = "deployment.yaml"
	serviceFile       = "service.yaml"
	pdbFile           = "pdb.yaml"
	secretFile        = "secret.yaml"
	kustomizationFile = "kustomization.yaml"
)

// kustomization is the part of kustomize's Kustomization (sigs.k8s.io/kustomize/api/types) that
// these manifests may use. Kustomize decodes its file with unknown fields disallowed; so does this
// test, so a misspelt key fails here as it would in `kubectl apply -k`. A field kustomize knows but
// this struct does not is refused too: add it here when a manifest needs it.
type kustomization struct {
	APIVersion        string            `json:"apiVersion"`
	Kind              string            `json:"kind"`
	Namespace         string            `json:"namespace,omitempty"`
	NamePrefix        string            `json:"namePrefix,omitempty"`
	NameSuffix        string            `json:"nameSuffix,omitempty"`
	CommonAnnotations map[string]string `json:"commonAnnotations,omitempty"`
	Resources         []string          `json:"resources,omitempty"`
	Components        []string          `json:"components,omitempty"`
	Images            []kustomizeImage  `json:"images,omitempty"`
}

// kustomizeImage is kustomize's types.Image: it rewrites the image of every container whose image
// name (without tag or digest) equals Name.
type kustomizeImage struct {
	Name      string `json:"name"`
	NewName   string `json:"newName,omitempty"`
	TagSuffix string `json:"tagSuffix,omitempty"`
	NewTag    string `json:"newTag,omitempty"`
	Digest    string `json:"digest,omitempty"`
}

// manifests is every manifest, decoded. Each test decodes its own copy, so a subtest may mutate it.
type manifests struct {
	// files are the names of the YAML files in kubernetes/, sorted.
	files []string

	namespace     *corev1.Namespace
	configMap     *corev1.ConfigMap
	deployment    *appsv1.Deployment
	service       *corev1.Service
	pdb           *policyv1.PodDisruptionBudget
	secret        *corev1.Secret
	kustomization *kustomization

	cloudRun *run.Service
}

// sources is the raw text of every manifest, by path relative to this directory.
type sources map[string][]byte

// readSources reads every manifest file.
func readSources(tb testing.TB) sources {
	tb.Helper()
	entries, err := os.ReadDir(kubernetesDir)
	if err != nil {
		tb.Fatal(err)
	}
	src := sources{}
	for _, e := range entries {
		if e.IsDir() || !isYAML(e.Name()) {
			continue
		}
		p := filepath.Join(kubernetesDir, e.Name())
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		src[p] = data
	}
	data, err := os.ReadFile(cloudRunFile)
	if err != nil {
		tb.Fatal(err)
	}
	src[cloudRunFile] = data
	return src
}

func isYAML(name string) bool {
	return strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// decodeAll decodes every manifest strictly. A YAML file in kubernetes/ that it does not know is
// an error: a manifest nobody checks is what this test exists to prevent.
func decodeAll(src sources) (*manifests, error) {
	m := &manifests{}
	decoders := map[string]func([]byte) error{
		namespaceFile:     into(&m.namespace, "v1", "Namespace"),
		configMapFile:     into(&m.configMap, "v1", "ConfigMap"),
		deploymentFile:    into(&m.deployment, "apps/v1", "Deployment"),
		serviceFile:       into(&m.service, "v1", "Service"),
		pdbFile:           into(&m.pdb, "policy/v1", "PodDisruptionBudget"),
		secretFile:        into(&m.secret, "v1", "Secret"),
		kustomizationFile: into(&m.kustomization, "kustomize.config.k8s.io/v1beta1", "Kustomization"),
	}
	for p := range src {
		if dir, name := filepath.Split(p); filepath.Clean(dir) == kubernetesDir {
			m.files = append(m.files, name)
		}
	}
	sort.Strings(m.files)
	for _, name := range m.files {
		if decoders[name] == nil {
			return nil, fmt.Errorf("%s: a manifest this test does not decode or check: teach decodeAll its kind", name)
		}
	}
	names := slices.Sorted(maps.Keys(decoders))
	for _, name := range names {
		p := filepath.Join(kubernetesDir, name)
		b, ok := src[p]
		if !ok {
			return nil, fmt.Errorf("%s: missing", p)
		}
		if err := decoders[name](b); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
	}
	var err error
	if m.cloudRun, err = decodeCloudRun(src[cloudRunFile]); err != nil {
		return nil, fmt.Errorf("%s: %w", cloudRunFile, err)
	}
	return m, nil
}

// into returns a decoder of one Kubernetes manifest of the given apiVersion and kind into *dst.
func into[T any](dst **T, apiVersion, kind string) func([]byte) error {
	return func(data []byte) error {
		v, err := decodeK8s[T](data, apiVersion, kind)
		*dst = v
		return err
	}
}

// mustDecode decodes a fresh copy of every manifest.
func mustDecode(tb testing.TB, src sources) *manifests {
	tb.Helper()
	m, err := decodeAll(src)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// decodeK8s decodes one Kubernetes manifest as kubectl's strict field validation would: exactly one
// YAML document, of the given apiVersion and kind, with no unknown or duplicate field, and every
// key spelt with the letter case of the API (encoding/json alone would accept "readinessprobe").
func decodeK8s[T any](data []byte, apiVersion, kind string) (*T, error) {
	if err := oneDocument(data); err != nil {
		return nil, err
	}
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(data, &tm); err != nil {
		return nil, fmt.Errorf("read apiVersion and kind: %w", err)
	}
	if tm.APIVersion != apiVersion || tm.Kind != kind {
		return nil, fmt.Errorf("apiVersion %q, kind %q: want %q, %q", tm.APIVersion, tm.Kind, apiVersion, kind)
	}
	out := new(T)
	if err := yaml.UnmarshalStrict(data, out); err != nil {
		return nil, fmt.Errorf("strict decode into %T: %w", out, err)
	}
	if err := sameKeys(data, out); err != nil {
		return nil, err
	}
	return out, nil
}

// decodeCloudRun decodes the Cloud Run service: YAML to JSON (a duplicate key fails), then
// encoding/json into the Cloud Run Admin API v1 Service with unknown fields disallowed.
func decodeCloudRun(data []byte) (*run.Service, error) {
	if data == nil {
		return nil, errors.New("missing")
	}
	if err := oneDocument(data); err != nil {
		return nil, err
	}
	j, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("yaml to json: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var s run.Service
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("strict decode into %T: %w", &s, err)
	}
	if dec.More() {
		return nil, errors.New("data after the service")
	}
	if s.ApiVersion != "serving.knative.dev/v1" || s.Kind != "Service" {
		return nil, fmt.Errorf("apiVersion %q, kind %q: want %q, %q", s.ApiVersion, s.Kind, "serving.knative.dev/v1", "Service")
	}
	if err := sameKeys(data, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// oneDocument refuses a file with more than one YAML document: the decoders read only the first,
// so a second one would be applied by kubectl and never checked here.
func oneDocument(data []byte) error {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var n int
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("split YAML documents: %w", err)
		}
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			return fmt.Errorf("YAML document %d: %w", n+1, err)
		}
		if v != nil { // a document of comments only is no document
			n++
		}
	}
	if n != 1 {
		return fmt.Errorf("%d YAML documents, want exactly 1", n)
	}
	return nil
}

// sameKeys closes the gap that encoding/json leaves in strict decoding: it matches keys to struct
// fields without regard to letter case, so "readinessprobe" silently fills ReadinessProbe, where
// the Kubernetes API server refuses or drops it. Every key of the file must reappear, spelt the
// same, when the decoded value is encoded again; a key whose value is empty may vanish (it says
// nothing that absence does not).
func sameKeys(data []byte, decoded any) error {
	var orig any
	if err := yaml.Unmarshal(data, &orig); err != nil {
		return fmt.Errorf("read keys: %w", err)
	}
	j, err := json.Marshal(decoded)
	if err != nil {
		return fmt.Errorf("encode again: %w", err)
	}
	var again any
	if err := json.Unmarshal(j, &again); err != nil {
		return fmt.Errorf("decode again: %w", err)
	}
	if p := missingKey(orig, again, ""); p != "" {
		return fmt.Errorf("field %s: no such field (mind the letter case)", p)
	}
	return nil
}

// missingKey returns the path of the first key in orig that is not in again.
func missingKey(orig, again any, path string) string {
	switch o := orig.(type) {
	case map[string]any:
		a, _ := again.(map[string]any)
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			av, ok := a[k]
			if !ok {
				if isEmpty(o[k]) {
					continue
				}
				return path + "." + k
			}
			if p := missingKey(o[k], av, path+"."+k); p != "" {
				return p
			}
		}
	case []any:
		a, _ := again.([]any)
		for i, v := range o {
			var av any
			if i < len(a) {
				av = a[i]
			}
			if p := missingKey(v, av, fmt.Sprintf("%s[%d]", path, i)); p != "" {
				return p
			}
		}
	}
	return ""
}

func isEmpty(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.String:
		return rv.Len() == 0
	default:
		return rv.IsZero()
	}
}

// TestDecode decodes every manifest as it is in the repository.
func TestDecode(t *testing.T) {
	t.Parallel()
	mustDecode(t, readSources(t))
}

// TestDecodeIsStrict proves that the decoding refuses what kubectl apply or gcloud would refuse or
// silently drop: each case edits one file's text and decoding must then fail.
func TestDecodeIsStrict(t *testing.T) {
	t.Parallel()
	k8s := func(name string) string { return filepath.Join(kubernetesDir, name) }
	tests := []struct {
		name, file, from, to string
	}{
		{"unknown field", k8s(deploymentFile), "readinessProbe:", "readinessProbes:"},
		{"field in the wrong case", k8s(deploymentFile), "readinessProbe:", "readinessprobe:"},
		{"field at the wrong level", k8s(deploymentFile), "      automountServiceAccountToken: false", "      automountServiceAccountToken: false\n      readOnlyRootFilesystem: true"},
		{"duplicate field", k8s(deploymentFile), "  replicas: 2", "  replicas: 2\n  replicas: 3"},
		{"wrong kind", k8s(deploymentFile), "kind: Deployment", "kind: StatefulSet"},
		{"wrong apiVersion", k8s(deploymentFile), "apiVersion: apps/v1", "apiVersion: apps/v1beta2"},
		{"second document", k8s(deploymentFile), "apiVersion: apps/v1", "apiVersion: v1\nkind: Pod\n---\napiVersion: apps/v1"},
		{"wrong value type", k8s(deploymentFile), "  replicas: 2", "  replicas: two"},
		{"service: field in the wrong case", k8s(serviceFile), "targetPort: http", "targetport: http"},
		{"configmap: unknown field", k8s(configMapFile), "\ndata:", "\ndatas:"},
		{"secret: field in the wrong case", k8s(secretFile), "stringData:", "stringdata:"},
		{"pdb: misspelt field", k8s(pdbFile), "minAvailable:", "minAvaliable:"},
		{"namespace: unknown field", k8s(namespaceFile), "  labels:", "  label:"},
		{"kustomization: misspelt field", k8s(kustomizationFile), "resources:", "resource:"},
		{"kustomization: field in the wrong case", k8s(kustomizationFile), "newTag:", "newtag:"},
		{"kustomization: field this struct does not know", k8s(kustomizationFile), "namespace: cf-scoped-token", "namespace: cf-scoped-token\ncommonLabels: {team: infra}"},
		{"kustomization: wrong kind", k8s(kustomizationFile), "kind: Kustomization", "kind: Component"},
		{"cloud run: misspelt field", cloudRunFile, "containerConcurrency:", "containerConcurency:"},
		{"cloud run: field in the wrong case", cloudRunFile, "startupProbe:", "startupprobe:"},
		{"cloud run: Kubernetes field Cloud Run lacks", cloudRunFile, "              readOnly: true", "              readOnly: true\n              mountPropagation: None"},
		{"cloud run: duplicate field", cloudRunFile, "      containerConcurrency: 80", "      containerConcurrency: 80\n      containerConcurrency: 1"},
		{"cloud run: wrong kind", cloudRunFile, "kind: Service", "kind: Job"},
		{"cloud run: second document", cloudRunFile, "apiVersion: serving.knative.dev/v1", "apiVersion: v1\nkind: Secret\n---\napiVersion: serving.knative.dev/v1"},
	}
	src := readSources(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			orig, ok := src[tc.file]
			if !ok {
				t.Fatalf("%s: no such manifest", tc.file)
			}
			if !bytes.Contains(orig, []byte(tc.from)) {
				t.Fatalf("%s no longer contains %q: update this case", tc.file, tc.from)
			}
			edited := sources{}
			for p, b := range src {
				edited[p] = b
			}
			edited[tc.file] = bytes.Replace(orig, []byte(tc.from), []byte(tc.to), 1)
			_, err := decodeAll(edited)
			if err == nil {
				t.Fatalf("%s with %q → %q decodes without error", tc.file, tc.from, tc.to)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestDecodeRefusesUncheckedManifest: a new file in kubernetes/ must be taught to the test.
func TestDecodeRefusesUncheckedManifest(t *testing.T) {
	t.Parallel()
	src := readSources(t)
	src[filepath.Join(kubernetesDir, "networkpolicy.yaml")] = []byte("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n")
	if _, err := decodeAll(src); err == nil {
		t.Error("an unknown manifest in kubernetes/ decodes without error")
	}
}

// on makes a check of what get finds in the manifests (a pod or revision and its broker
// container); the check fails as get does when the manifests hold no such thing.
func on[S, C any](get func(*manifests) (S, C, error), check func(S, C) error) func(*manifests) error {
	return func(m *manifests) error {
		s, c, err := get(m)
		if err != nil {
			return err
		}
		return check(s, c)
	}
}

// promise is one thing the manifests promise, with copies of them broken so that it must fail.
type promise struct {
	name  string
	check func(*manifests) error
	// breaks each change the manifests so that check must fail.
	breaks map[string]func(*manifests)
}

// TestPromises runs every promise against the manifests, which must keep it, and against each of
// its broken copies, which must not.
func TestPromises(t *testing.T) {
	t.Parallel()
	src := readSources(t)
	all := append(kubernetesPromises(), cloudRunPromises()...)
	seen := map[string]bool{}
	for _, p := range all {
		if seen[p.name] {
			t.Fatalf("two promises named %q", p.name)
		}
		seen[p.name] = true
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			if err := p.check(mustDecode(t, src)); err != nil {
				t.Errorf("broken: %v", err)
			}
			if len(p.breaks) == 0 {
				t.Fatal("no broken copy: nothing shows this check can fail")
			}
			for name, mutate := range p.breaks {
				m := mustDecode(t, src)
				mutate(m)
				err := p.check(m)
				if err == nil {
					t.Errorf("%s: the check passes on this broken copy", name)
					continue
				}
				t.Logf("%s: refused: %v", name, err)
			}
		})
	}
}
