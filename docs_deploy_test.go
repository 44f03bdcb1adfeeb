package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/cf-scoped-token/cf-scoped-token/internal/broker"
)

// TestDocsCommands checks the code blocks of the other Markdown documents
// the way TestReadmeBlocks checks the README's: every shell block passes
// bash -n and gives cf-scoped-token only flags its --help lists, and every
// YAML block parses and uses only inputs action.yml declares. It checks the
// broker's command line in the Kubernetes and Cloud Run manifests against
// the binary too, so that a renamed flag fails here and not at deploy time.
func TestDocsCommands(t *testing.T) {
	t.Parallel()
	requireTools(t, "bash")
	fc := &flagChecker{bin: mustDocsBinary(t)}
	docs := []string{
		"docs/broker.md", "docs/policy/README.md",
		"deploy/README.md", "deploy/kubernetes/README.md", "deploy/cloud-run/README.md",
	}
	for _, doc := range docs {
		b, err := os.ReadFile(filepath.FromSlash(doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, blk := range markdownBlocks(string(b)) {
			where := fmt.Sprintf("%s:%d", doc, blk.Line)
			switch blk.Lang {
			case "sh", "bash", "shell":
				if out, err := exec.Command("bash", "-n", "-c", blk.Text).CombinedOutput(); err != nil {
					t.Errorf("%s: bash -n: %v\n%s", where, err, out)
				}
				checkFlags(t, fc, where, blk.Text)
			case "yaml", "yml":
				var v any
				if err := yaml.Unmarshal([]byte(blk.Text), &v); err != nil {
					t.Errorf("%s: YAML: %v", where, err)
					continue
				}
				for _, s := range yamlStrings(v) {
					checkFlags(t, fc, where, s)
				}
				checkActionInputs(t, where, v)
			}
		}
	}
	for _, manifest := range []string{"deploy/kubernetes/deployment.yaml", "deploy/cloud-run/service.yaml"} {
		args := brokerArgs(t, manifest)
		if len(args) == 0 || args[0] != "broker" {
			t.Errorf("%s: the container's args %q do not run the broker", manifest, args)
			continue
		}
		if err := fc.check(invocation{Sub: "broker", Words: append([]string{"cf-scoped-token"}, args...), Flags: flagNames(args[1:])}); err != nil {
			t.Errorf("%s: %v", manifest, err)
		}
	}
}

// podTemplate is the part of a manifest's pod template (a Deployment's or
// a Cloud Run Service's) that these tests read.
type podTemplate struct {
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Image string   `yaml:"image"`
					Args  []string `yaml:"args"`
				} `yaml:"containers"`
				TimeoutSeconds int `yaml:"timeoutSeconds"` // Cloud Run's request timeout
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readPodTemplate(t *testing.T, path string) podTemplate {
	t.Helper()
	b, err := os.ReadFile(filepath.FromSlash(path))
	if err != nil {
		t.Fatal(err)
	}
	var m podTemplate
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return m
}

// brokerArgs is the args of the container that runs the release image in a
// manifest.
func brokerArgs(t *testing.T, path string) []string {
	t.Helper()
	for _, c := range readPodTemplate(t, path).Spec.Template.Spec.Containers {
		if strings.Contains(c.Image, "cf-scoped-token") {
			return c.Args
		}
	}
	t.Fatalf("%s: no container runs the cf-scoped-token image", path)
	return nil
}

// TestCloudRunTimeoutCoversAttempt: the Cloud Run manifest's request
// timeout is no shorter than the broker client's attempt, or Cloud Run
// would cut off an exchange the client still waits for, and its retry would
// carry an OIDC token the broker refuses as a replay. The deploy module
// checks the same bound written out; this holds it to the value the client
// uses.
func TestCloudRunTimeoutCoversAttempt(t *testing.T) {
	t.Parallel()
	const manifest = "deploy/cloud-run/service.yaml"
	got := time.Duration(readPodTemplate(t, manifest).Spec.Template.Spec.TimeoutSeconds) * time.Second
	if least := broker.DefaultRetry().Timeout; got < least {
		t.Errorf("%s: timeoutSeconds %s, want at least the client's attempt timeout %s", manifest, got, least)
	}
}

// flagNames are the flags of args, without their =values.
func flagNames(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(a, "=")
			out = append(out, name)
		}
	}
	return out
}
