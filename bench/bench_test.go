package bench

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// appsWriteAccount is "Access: Apps and Policies Write" for accounts in Cloudflare's catalogue
// (reference/cloudflare/access-permission-groups.json); its zone-scoped twin of the same name
// is 959972745952452f8be2452be8cbb9f2, which a script picking by name alone could send.
const appsWriteAccount = "1e13c5124ca64b72b1969a67e8829049"

// TestMeasure runs one job both ways through the code the benchmarks use, and checks that
// what it counts and times is what happened: every request is attributed to the phase that
// made it, agrees with the emulator's own log, and falls within that phase's process
// lifetime; the latency was injected; the job did its work and left nothing behind.
func TestMeasure(t *testing.T) {
	t.Parallel()
	const latency = 20 * time.Millisecond
	withBaseline := missingTool() == ""
	if !withBaseline {
		t.Logf("measuring the binary only: baseline.sh needs %s (Debian: apt-get install -y curl jq)", missingTool())
	}
	w := newWorld(t, latency, emulator.Limits{})
	s := w.measure(t, t.Context(), 0, withBaseline)
	t.Logf("main %d requests %v; post %d %v; baseline %d %v", s.main.requests(), names(s.main.reqs),
		s.post.requests(), names(s.post.reqs), s.baseline.requests(), names(s.baseline.reqs))

	// The phases together are every request the emulator saw, in order.
	var phases []emulator.Request
	for _, p := range []phase{s.main, s.post, s.baseline} {
		phases = append(phases, p.reqs...)
	}
	if diff := cmp.Diff(names(w.e.Requests()), names(phases)); diff != "" {
		t.Errorf("requests attributed to the phases (-all +phases):\n%s", diff)
	}

	for _, tc := range []struct {
		name    string
		p       phase
		started time.Time
	}{
		{"main", s.main, s.mainStage.Started},
		{"post", s.post, s.postStage.Started},
		{"baseline", s.baseline, s.script.started},
	} {
		if tc.name == "baseline" && !withBaseline {
			continue
		}
		if tc.p.requests() == 0 {
			t.Errorf("%s made no request", tc.name)
			continue
		}
		end := tc.started.Add(tc.p.wall)
		for _, r := range tc.p.reqs {
			if r.Arrived.Before(tc.started) || r.Done.After(end) {
				t.Errorf("%s: %s at %v–%v is outside the process's lifetime %v–%v", tc.name, name(r), r.Arrived, r.Done, tc.started, end)
			}
			if got := r.Done.Sub(r.Arrived); got < latency {
				t.Errorf("%s: %s took %v, less than the injected %v", tc.name, name(r), got, latency)
			}
			// Answered, and neither refused nor failed.
			if r.Status == 0 || r.Status >= 500 || r.Status == http.StatusTooManyRequests {
				t.Errorf("%s: %s answered %d", tc.name, name(r), r.Status)
			}
		}
		if tc.p.firstRequest <= 0 || tc.p.firstRequest >= tc.p.wall {
			t.Errorf("%s: start to first request %v, want within (0, wall %v)", tc.name, tc.p.firstRequest, tc.p.wall)
		}
		if tc.p.cpu <= 0 {
			t.Errorf("%s: CPU time %v", tc.name, tc.p.cpu)
		}
	}

	// Main created one token and verified it with the token itself; post deleted that one.
	id := s.state["token-id"]
	child := s.mainStage.Outputs["token"]
	if id == "" || !emulator.ValidTokenValue(child) {
		t.Fatalf("main left token-id %q and a token output that is not a token value", id)
	}
	if got := countRoutes(s.main.reqs, "POST", "/user/tokens"); got != 1 {
		t.Errorf("main sent %d creates, want 1", got)
	}
	for i, r := range s.main.reqs {
		auth := r.Header.Get("Authorization")
		if strings.HasSuffix(r.Path, "/tokens/verify") != (auth == "Bearer "+child) {
			t.Errorf("main request %d (%s %s) authenticated with the wrong token", i, r.Method, r.Path)
		}
	}
	if got := countRoutes(s.post.reqs, "DELETE", "/user/tokens/"+id); got != 1 {
		t.Errorf("post sent %d deletes of token %s, want 1", got, id)
	}
	if live := w.children(); len(live) != 0 {
		t.Errorf("%d child tokens are alive after the job, want 0", len(live))
	}
	job := &ghactiontest.Job{Main: s.mainStage, Post: s.postStage}
	job.AssertNoLeaks(t, w.seeded.UserToken, w.seeded.AccountToken, child)
}

// countRoutes counts the requests with this method whose path ends in suffix.
func countRoutes(rs []emulator.Request, method, suffix string) int {
	n := 0
	for _, r := range rs {
		if r.Method == method && strings.HasSuffix(r.Path, suffix) {
			n++
		}
	}
	return n
}

// createBody is the part of a create request baseline.sh must get right.
type createBody struct {
	Name      string `json:"name"`
	ExpiresOn string `json:"expires_on"`
	NotBefore string `json:"not_before"`
	Policies  []struct {
		Effect           string            `json:"effect"`
		PermissionGroups []map[string]any  `json:"permission_groups"`
		Resources        map[string]string `json:"resources"`
	} `json:"policies"`
}

// TestBaseline checks that baseline.sh does the job the benchmarks hold the binary against:
// four requests, the account-scoped group, an expiry, a verify with the new token, a delete,
// and no secret printed outside its mask.
func TestBaseline(t *testing.T) {
	t.Parallel()
	haveTools(t)
	w := newWorld(t, 0, emulator.Limits{})
	before := time.Now().UTC().Truncate(time.Second)
	s, p := w.runScript(t, t.Context(), "")
	after := time.Now().UTC()
	if s.exit != 0 {
		t.Fatalf("baseline.sh exited %d; stderr:\n%s", s.exit, w.redact(s.stderr))
	}
	m := regexp.MustCompile(`(?m)^token ([0-9a-f]{32}) is active until `).FindStringSubmatch(s.stdout)
	if m == nil {
		t.Fatalf("stdout does not name the token it made:\n%s", w.redact(s.stdout))
	}
	id := m[1]
	want := []string{
		"GET " + emulator.BasePath + "/user/tokens/permission_groups",
		"POST " + emulator.BasePath + "/user/tokens",
		"GET " + emulator.BasePath + "/user/tokens/verify",
		"DELETE " + emulator.BasePath + "/user/tokens/" + id,
	}
	if diff := cmp.Diff(want, names(p.reqs)); diff != "" {
		t.Fatalf("requests (-want +got):\n%s", diff)
	}

	var body createBody
	if err := json.Unmarshal(p.reqs[1].Body, &body); err != nil {
		t.Fatalf("create body: %v", err)
	}
	exp, err := time.Parse(time.RFC3339, body.ExpiresOn)
	if err != nil || !strings.HasSuffix(body.ExpiresOn, "Z") || exp.Nanosecond() != 0 {
		t.Errorf("expires_on %q, want whole-second UTC RFC 3339 (%v)", body.ExpiresOn, err)
	}
	if exp.Before(before.Add(jobTTL)) || exp.After(after.Add(jobTTL)) {
		t.Errorf("expires_on %s, want within [%s, %s] + %v", exp, before, after, jobTTL)
	}
	if body.Name == "" || body.NotBefore != "" || len(body.Policies) != 1 {
		t.Fatalf("create body %+v: want a name, no not_before, one policy", body)
	}
	pol := body.Policies[0]
	if pol.Effect != "allow" || len(pol.PermissionGroups) != 1 || pol.PermissionGroups[0]["id"] != appsWriteAccount {
		t.Errorf("policy %+v, want allow with the account-scoped group %s only", pol, appsWriteAccount)
	}
	if diff := cmp.Diff(map[string]string{"com.cloudflare.api.account." + emulator.SeedAccount1: "*"}, pol.Resources); diff != "" {
		t.Errorf("resources (-want +got):\n%s", diff)
	}

	// Verify goes with the new token, everything else with the parent.
	out := ghactiontest.ReadOutput(s.stdout)
	if len(out.Masks) != 1 || !emulator.ValidTokenValue(out.Masks[0]) {
		t.Fatalf("baseline.sh masked %d values, want the one token", len(out.Masks))
	}
	child := out.Masks[0]
	for i, r := range w.e.Requests() {
		wantAuth := "Bearer " + w.seeded.UserToken
		if i == 2 {
			wantAuth = "Bearer " + child
		}
		if r.Header.Get("Authorization") != wantAuth {
			t.Errorf("request %d (%s %s) authenticated with the wrong token", i, r.Method, r.Path)
		}
	}
	if live := w.children(); len(live) != 0 {
		t.Errorf("%d child tokens are alive after the script, want 0", len(live))
	}
	out.AssertNoLeaks(t, w.seeded.UserToken, child)
	for _, secret := range []string{w.seeded.UserToken, child} {
		if strings.Contains(s.stderr, secret) {
			t.Error("a secret appears on stderr")
		}
	}
}

// TestBaselineDeletesOnFailure: a token that fails its verify is deleted before the script
// fails, as the binary's main step does.
func TestBaselineDeletesOnFailure(t *testing.T) {
	t.Parallel()
	haveTools(t)
	w := newWorld(t, 0, emulator.Limits{})
	w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: http.StatusUnauthorized})
	s, p := w.runScript(t, t.Context(), "")
	if s.exit == 0 {
		t.Fatal("baseline.sh succeeded although verify failed")
	}
	if !strings.Contains(s.stderr, "::error::GET /user/tokens/verify failed") {
		t.Errorf("stderr does not report the failed verify:\n%s", w.redact(s.stderr))
	}
	if got := countRoutes(p.reqs, "DELETE", ""); got != 1 {
		t.Errorf("%d deletes, want 1: %v", got, names(p.reqs))
	}
	if live := w.children(); len(live) != 0 {
		t.Errorf("%d child tokens are alive after the failed script, want 0", len(live))
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	ms := func(ns ...int) []time.Duration {
		var out []time.Duration
		for _, n := range ns {
			out = append(out, time.Duration(n)*time.Millisecond)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 0.5, 0},
		{"one", ms(7), 0.9, 7 * time.Millisecond},
		{"median of odd", ms(5, 1, 3), 0.5, 3 * time.Millisecond},
		{"median of even is the lower middle", ms(4, 1, 3, 2), 0.5, 2 * time.Millisecond},
		{"p90 of ten is the ninth", ms(10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 9 * time.Millisecond},
		{"p90 of twenty is the eighteenth", ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 0.9, 18 * time.Millisecond},
		{"max", ms(2, 9, 4), 1, 9 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("percentile(%v, %v) = %v, want %v", tc.ds, tc.p, got, tc.want)
			}
		})
	}
}
