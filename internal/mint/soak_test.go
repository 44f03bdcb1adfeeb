package mint_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/cloudflare"
	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/mint"
	"github.com/cf-scoped-token/cf-scoped-token/internal/retry"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// Soak parameters: 500 jobs, 8 at a time, a fifth of all requests failing
// at random.
const (
	soakJobs    = 500
	soakWorkers = 8
	soakRate    = 0.2
	soakSeed    = 20261127
)

// soakJob is one simulated job: the action's main step (Mint, whose
// handover saves the state) and its post step (Revoke of the saved id).
type soakJob struct {
	req      token.Request
	m        *mint.Minter
	saved    *mint.Minted // the state the handover wrote
	mainErr  error
	postErr  error
	cleanErr error // the final clean-up pass, after a failed post
}

// TestSoak runs many jobs at once against one emulator that fails a fifth
// of all requests at random (5xx, 429, resets, lost answers) and holds the
// lifecycle to SPEC's promises in aggregate: no token outlives its job
// unnamed (no orphans), no secret reaches a log line or an error (no
// leaks), and every job either succeeds or fails with an error that says
// what failed. It prints its counts so that CI shows them.
//
// Not parallel: it runs alone (parallel tests wait for it), so the duration
// it prints is its own.
func TestSoak(t *testing.T) {
	start := time.Now()
	w := mustWorld(t)
	// The default retry policy, as in production, but with no real waiting.
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2 * soakWorkers}}
	policy := retry.Policy{Sleep: w.waits.Sleep}
	userC := &cloudflare.Client{BaseURL: w.api, HTTP: httpc, Token: token.NewSecret(w.seed.UserToken), Retry: policy, Debugf: w.logs.printf}
	acctC := &cloudflare.Client{BaseURL: w.api, HTTP: httpc, Token: token.NewSecret(w.seed.AccountToken), Retry: policy, Debugf: w.logs.printf}
	now := func() time.Time { return t0 }
	userM := &mint.Minter{API: userC, Now: now, Logf: w.logs.printf, Sleep: noSleep}
	acctM := &mint.Minter{API: acctC, Now: now, Logf: w.logs.printf, Sleep: noSleep}
	w.e.SetLimits(emulator.Limits{UserTokenQuota: 1 << 20, AccountTokenQuota: 1 << 20}) // rate limit off

	// Every secret value seen during the run, to search the logs for.
	var secretsMu sync.Mutex
	secrets := map[string]bool{}
	remember := func(vs ...string) {
		secretsMu.Lock()
		defer secretsMu.Unlock()
		for _, v := range vs {
			secrets[v] = true
		}
	}
	snapshot := func() {
		for _, tok := range w.e.Tokens() {
			remember(tok.Value)
		}
	}

	jobs := make([]*soakJob, soakJobs)
	for i := range jobs {
		j := &soakJob{m: userM}
		j.req = w.request(t, func(in *token.Inputs) {
			in.Scopes = "organizations, apps-and-policies:write"
			if i%4 == 3 { // a quarter account-owned, on the account's endpoints
				in.Owner, in.APIToken = "account", w.seed.AccountToken
			}
		})
		if j.req.Owner == token.OwnerAccount {
			j.m = acctM
		}
		jobs[i] = j
	}

	w.e.SetChaos(emulator.Chaos{
		Rate: soakRate, Seed: soakSeed,
		Kinds: []emulator.FaultKind{emulator.Status, emulator.RateLimit, emulator.Reset, emulator.LostResponse},
	})
	queue := make(chan *soakJob)
	var wg sync.WaitGroup
	for range soakWorkers {
		wg.Go(func() {
			for j := range queue {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				_, j.mainErr = j.m.Mint(ctx, j.req, func(m mint.Minted) error {
					j.saved = &m // the action writes STATE_token-id and friends
					remember(m.Value.Reveal())
					snapshot()
					return nil
				})
				if j.mainErr == nil {
					s := j.saved
					_, j.postErr = j.m.Revoke(ctx, s.Endpoint, token.Info{ID: s.ID, Name: s.Name, ExpiresOn: s.ExpiresOn})
				}
				cancel()
			}
		})
	}
	for _, j := range jobs {
		queue <- j
	}
	close(queue)
	wg.Wait()
	w.e.ClearFaults()
	runTime := time.Since(start)

	// Tokens alive now outlived their job. The ones an error names are
	// SPEC's ::error:: case; the final clean-up pass removes them.
	var errTexts []string
	for _, j := range jobs {
		for _, err := range []error{j.mainErr, j.postErr} {
			if err != nil {
				errTexts = append(errTexts, err.Error())
			}
		}
	}
	named := func(tok emulator.Token) bool {
		return slices.ContainsFunc(errTexts, func(s string) bool {
			return strings.Contains(s, tok.ID) || strings.Contains(s, tok.Name)
		})
	}
	leftNamed := 0
	for _, tok := range w.children() {
		remember(tok.Value)
		if named(tok) {
			leftNamed++
			t.Logf("left alive and named by an error: %s %q", tok.ID, tok.Name)
		}
	}
	for _, j := range jobs {
		if j.postErr != nil {
			s := j.saved
			_, j.cleanErr = j.m.Revoke(t.Context(), s.Endpoint, token.Info{ID: s.ID, Name: s.Name, ExpiresOn: s.ExpiresOn})
		}
	}
	for _, tok := range w.children() { // left by a failed main step, named by its error
		if named(tok) {
			ep, c := token.Endpoint{}, userC
			if tok.Owner == emulator.OwnerAccount {
				ep, c = token.Endpoint{AccountID: tok.OwnerID}, acctC
			}
			if err := c.DeleteToken(t.Context(), ep, tok.ID); err != nil {
				t.Errorf("clean-up of %s: %v", tok.ID, err)
			}
		}
	}
	orphans := w.children()

	// Tally.
	var succeeded, postFailures int
	mainCauses := map[string]int{}
	for i, j := range jobs {
		switch {
		case j.mainErr != nil:
			cause := soakCause(j.mainErr)
			mainCauses[cause]++
			if cause == "" {
				t.Errorf("job %d: main failed with an error that does not say what failed: %q", i, j.mainErr)
			}
			if j.saved != nil {
				t.Errorf("job %d: main failed after the handover", i)
			}
		case j.postErr != nil:
			postFailures++
			var rerr *mint.RevokeError
			if !errors.As(j.postErr, &rerr) || rerr.ID != j.saved.ID || !rerr.ExpiresOn.Equal(j.saved.ExpiresOn) ||
				!strings.Contains(j.postErr.Error(), j.saved.ID) {
				t.Errorf("job %d: post failed with %q, want a RevokeError naming %s and its expiry", i, j.postErr, j.saved.ID)
			}
			t.Logf("job %d: post failed: %v", i, j.postErr)
			if j.cleanErr != nil {
				t.Errorf("job %d: clean-up after the failed post: %v", i, j.cleanErr)
			}
		case j.saved == nil:
			t.Errorf("job %d: main succeeded without a handover", i)
		default:
			succeeded++
		}
	}
	snapshot()
	remember(w.secrets()...)
	texts := w.logs.All()
	texts = append(texts, errTexts...)
	for _, j := range jobs {
		if j.cleanErr != nil {
			texts = append(texts, j.cleanErr.Error())
		}
	}
	secretsMu.Lock()
	allSecrets := slices.Collect(maps.Keys(secrets))
	secretsMu.Unlock()
	leaked := leaks(texts, allSecrets)

	reqs := w.e.Requests()
	faults := map[string]int{}
	for _, r := range reqs {
		if r.Fault != 0 {
			faults[r.Fault.String()]++
		}
	}
	adoptions := 0
	for _, l := range w.logs.All() {
		if strings.Contains(l, "adopted it with a new value") {
			adoptions++
		}
	}

	summary := fmt.Sprintf("soak: %d jobs (%d workers, chaos %.0f%% seed %d): %d succeeded; main failures %d %v; post failures %d; "+
		"tokens left named by an error %d; requests %d; injected faults %v; adoptions %d; orphans %d; leaks %d "+
		"(%d log lines and errors searched for %d secrets); backoffs %d; duration %s",
		soakJobs, soakWorkers, soakRate*100, soakSeed, succeeded, sum(mainCauses), mainCauses, postFailures,
		leftNamed, len(reqs), faults, adoptions, len(orphans), leaked, len(texts), len(allSecrets),
		len(w.waits.All()), runTime.Round(time.Millisecond))
	t.Log(summary)
	fmt.Println(summary)

	if len(orphans) > 0 {
		t.Errorf("%d orphans: %q", len(orphans), describe(orphans))
	}
	if leaked > 0 {
		t.Errorf("%d log lines or errors hold a secret", leaked)
	}
	// A post step fails, and SPEC's ::error:: names a token that lives on,
	// only when every one of DefaultRetry's ten attempts of one DELETE meets
	// a fault that does not commit it (5xx, reset; a 429's wait uses up no
	// attempt): about 0.1^10 per job at this chaos. That would be the retry
	// budget showing, not a broken promise; it is reported as a failure so
	// that it is seen.
	if postFailures > 0 || leftNamed > 0 {
		t.Errorf("%d post failures and %d tokens left alive (named by an error) at %.0f%% chaos with the default retries: "+
			"each would be an ::error:: and a token that lives until its expiry", postFailures, leftNamed, soakRate*100)
	}
	if succeeded+sum(mainCauses)+postFailures != soakJobs {
		t.Errorf("jobs accounted for: %d, want %d", succeeded+sum(mainCauses)+postFailures, soakJobs)
	}
	if sum(faults) == 0 || adoptions == 0 {
		t.Errorf("chaos did not bite: %d faults, %d adoptions", sum(faults), adoptions)
	}
}

// soakCause says which step a failed main step failed on, from its
// error's types; "" when they do not say.
func soakCause(err error) string {
	var rerr *mint.RevokeError
	var verr *mint.VerifyError
	var step *mint.StepError
	switch {
	case errors.As(err, &rerr):
		return "clean-up after failure"
	case errors.Is(err, token.ErrQuotaExceeded):
		return "quota"
	case errors.As(err, &verr):
		return "verify"
	case errors.As(err, &step) && step.Step == mint.StepLookUp:
		return "create lost, look-up failed"
	case errors.As(err, &step):
		return string(step.Step)
	case errors.Is(err, token.ErrOutcomeUnknown):
		return "every create unanswered"
	}
	return ""
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}
