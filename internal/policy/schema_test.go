package policy

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// compileSchema compiles docs/policy/policy.schema.json.
func compileSchema(tb testing.TB) *jsonschema.Schema {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "policy", "policy.schema.json"))
	if err != nil {
		tb.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("policy.schema.json: %v", err)
	}
	c := jsonschema.NewCompiler()
	if err := c.AddResource("policy.schema.json", doc); err != nil {
		tb.Fatal(err)
	}
	sch, err := c.Compile("policy.schema.json")
	if err != nil {
		tb.Fatalf("compile policy.schema.json: %v", err)
	}
	return sch
}

// validateYAML checks a YAML file against the schema the way an editor
// does: YAML to JSON (yaml.v3 decides the types), then the schema.
func validateYAML(tb testing.TB, sch *jsonschema.Schema, src string) error {
	tb.Helper()
	var v any
	if err := yaml.Unmarshal([]byte(src), &v); err != nil {
		return err
	}
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatalf("YAML to JSON: %v", err)
	}
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		tb.Fatal(err)
	}
	return sch.Validate(inst)
}

// TestSchemaAcceptsExamples: every example in docs/policy is valid for the
// schema and for Parse.
func TestSchemaAcceptsExamples(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	srcs := map[string]string{"baseFile": baseFile, "matchFile": matchFile}
	for _, f := range examples(t) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		srcs[filepath.Base(f)] = string(b)
	}
	for name, src := range srcs {
		if err := validateYAML(t, sch, src); err != nil {
			t.Errorf("%s: schema: %v", name, err)
		}
		if _, err := Parse([]byte(src)); err != nil {
			t.Errorf("%s: Parse: %v", name, err)
		}
	}
}

// TestSchemaRefusesWhatParseRefuses: the bad files whose fault the schema
// can express are refused by both. (What only Parse can see — duplicate
// keys and rule names, ttl bounds, issuer names that exist, scope syntax —
// is in TestParseFaults.)
func TestSchemaRefusesWhatParseRefuses(t *testing.T) {
	t.Parallel()
	sch := compileSchema(t)
	tests := map[string]string{
		"unknown top-level key":             edit(map[int]string{20: "extra: x"}),
		"unknown rule key":                  edit(map[int]string{7: "    issuer: github\n    description: deploys"}),
		"unknown grant key":                 edit(map[int]string{18: "      max_ttl: 1h"}),
		"max-ttl not a duration":            edit(map[int]string{18: "      max-ttl: 1 hour"}),
		"max-ttl a number":                  edit(map[int]string{18: "      max-ttl: 3600"}),
		"missing grant":                     edit(map[int]string{14: "", 15: "", 16: "", 17: "", 18: "", 19: ""}),
		"missing scopes":                    edit(map[int]string{17: ""}),
		"empty scopes":                      edit(map[int]string{17: "      scopes: []"}),
		"missing rules":                     "issuers: {github: " + githubURL + "}\n",
		"empty rules":                       "issuers: {github: " + githubURL + "}\nrules: []\n",
		"empty issuers":                     "issuers: {}\nrules: []\n",
		"account id upper case":             edit(map[int]string{16: "      account-ids: [0123456789ABCDEF0123456789ABCDEF]"}),
		"owner neither":                     edit(map[int]string{15: "      owner: org"}),
		"owner account, two accounts":       edit(map[int]string{16: "      account-ids: [" + acctA + ", " + acctB + "]"}),
		"id claim glob":                     edit(map[int]string{10: `      repository_id: "7123*"`}),
		"id claim list":                     edit(map[int]string{11: `      actor_id: ["1", "2"]`}),
		"GitHub rule without a pin":         edit(map[int]string{9: "", 10: ""}),
		"GitHub pin not digits":             edit(map[int]string{9: "", 10: "      repository_id: octo-org"}),
		"GitLab rule without a pin":         edit(map[int]string{7: "    issuer: gitlab", 9: "", 10: "      project_path: a/b"}),
		"unquoted integer claim":            edit(map[int]string{10: "      repository_id: 712345678"}),
		"unquoted boolean claim":            edit(map[int]string{11: "      ref_protected: true"}),
		"reserved claim":                    edit(map[int]string{11: "      aud: x"}),
		"issuer URL trailing slash":         edit(map[int]string{4: "  gitlab: https://gitlab.com/"}),
		"issuer URL http off loopback":      edit(map[int]string{4: "  gitlab: http://gitlab.com"}),
		"issuer URL with query":             edit(map[int]string{4: "  gitlab: https://gitlab.com?a=b"}),
		"issuer name upper case":            edit(map[int]string{4: "  GitLab: https://gitlab.acme.example"}),
		"CircleCI issuer without org":       edit(map[int]string{4: "  circleci: https://oidc.circleci.com"}),
		"API tokens scope":                  edit(map[int]string{17: "      scopes: [\"Account API Tokens:write\"]"}),
		"rule name with a space":            edit(map[int]string{6: `  - name: "access deploy"`}),
		"allowed-ips not a CIDR":            edit(map[int]string{19: "      allowed-ips: [office]"}),
		"audience with whitespace":          edit(map[int]string{1: `audience: "a b"`}),
		"Buildkite without organization_id": "issuers: {buildkite: https://agent.buildkite.com}\nrules:\n  - name: bk\n    issuer: buildkite\n    claims: {organization_slug: acme}\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
		"generic without sub":               "issuers: {acme: https://idp.acme.example}\nrules:\n  - name: g\n    issuer: acme\n    claims: {team: x}\n    grant: {account-ids: [" + acctA + "], scopes: [organizations], max-ttl: 1h}\n",
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if err := validateYAML(t, sch, src); err == nil {
				t.Errorf("the schema accepts:\n%s", src)
			}
			faultsOf(t, src)
		})
	}
}

// TestDeployedPolicy: the policy the Kubernetes manifests ship (the
// ConfigMap's policy.yaml) loads, as the broker would load it at start,
// and passes the schema.
func TestDeployedPolicy(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "kubernetes", "configmap.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	src, ok := cm.Data["policy.yaml"]
	if !ok {
		t.Fatal("the ConfigMap has no policy.yaml")
	}
	p, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("the deployed policy does not load:\n%v", err)
	}
	if p.Audience == "" || len(p.Rules) == 0 {
		t.Errorf("the deployed policy has no audience or no rules: %+v", p)
	}
	if err := validateYAML(t, compileSchema(t), src); err != nil {
		t.Errorf("the deployed policy fails the schema: %v", err)
	}
}
