package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
)

// TestAction_FailedVerifyLeavesNoToken: a token that cannot be verified
// is deleted before the step fails; post finds nothing to revoke.
func TestAction_FailedVerifyLeavesNoToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Status, Status: 403})
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
	if job.Main.ExitCode != 1 || len(job.Main.Annotations("error")) != 1 {
		t.Fatalf("main: exit %d, want 1 with one error\n%s", job.Main.ExitCode, job.Main.Log)
	}
	if msg := job.Main.Annotations("error")[0].Data; !strings.Contains(msg, "verify: false") {
		t.Errorf("the error does not explain the refused check: %q", msg)
	}
	if len(job.Main.Outputs) != 0 || job.State["token-id"] != "" {
		t.Errorf("a failed step handed out outputs %v / state %v", keys(job.Main.Outputs), keys(job.State))
	}
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens outlive the failed step, want 0", n)
	}
	var created, deleted int
	for _, r := range w.e.Requests() {
		switch r.Route {
		case "POST /user/tokens":
			created++
		case "DELETE /user/tokens/{token_id}":
			deleted++
		}
	}
	if created != 1 || deleted != 1 {
		t.Errorf("created %d, deleted %d; want 1 and 1", created, deleted)
	}
}

// TestAction_CancelledJobLeavesNoToken: the runner cancels the job (SIGTERM)
// while main waits for verify; main deletes the token it made, post
// (which runs on cancellation) has nothing left to do.
func TestAction_CancelledJobLeavesNoToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.e.AddFault(emulator.Fault{Route: "GET /user/tokens/verify", Kind: emulator.Latency, Delay: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Cancel once the create has happened.
		for ctx.Err() == nil {
			if len(w.children()) > 0 {
				time.Sleep(100 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	job := w.runner.Run(ctx, ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])})
	if !job.Cancelled {
		t.Fatalf("the job was not cancelled:\n%s", job.Main.Log)
	}
	if job.Main.ExitCode == 0 {
		t.Errorf("a cancelled main exited 0")
	}
	if job.Post == nil || job.Post.Failed {
		t.Errorf("post did not run cleanly after the cancellation")
	}
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens outlive the cancelled job, want 0\n%s", n, job.Main.Log)
	}
	job.AssertNoLeaks(t, w.seeded.UserToken)
}

// TestAction_LostCreateAnswerIsAdopted: the create is committed but its
// answer is lost; the action finds the token by its unique name, adopts it
// with a new value, hands that out, and post deletes it. One token, never
// two, and the create is not sent twice.
func TestAction_LostCreateAnswerIsAdopted(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	w.e.AddFault(emulator.Fault{Route: "POST /user/tokens", Kind: emulator.LostResponse, Times: 1})
	ctx := context.Background()
	step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}
	main := w.mustRunMain(t, step)
	live := w.children()
	if len(live) != 1 {
		t.Fatalf("%d child tokens alive, want exactly 1", len(live))
	}
	if main.Outputs["token"] != live[0].Value || main.Outputs["token-id"] != live[0].ID {
		t.Error("the outputs are not the live token's id and current value")
	}
	if creates := len(w.e.RequestsTo("POST /user/tokens")); creates != 1 {
		t.Errorf("create sent %d times, want 1 (never blindly retried)", creates)
	}
	if !strings.Contains(main.Summary, "lost") {
		t.Errorf("the summary does not say the token was adopted:\n%s", main.Summary)
	}
	post := w.runner.RunPost(ctx, step, main.State)
	(&ghactiontest.Job{Main: main, Post: post}).AssertNoLeaks(t, w.seeded.UserToken, live[0].Value)
	if post.Failed || len(w.children()) != 0 {
		t.Errorf("post failed or left the token:\n%s", post.Log)
	}
}

// TestAction_RevokeModeDeletesAnEarlierJobsToken: one job keeps its token
// (revoke: false), a later job deletes it by id (mode: revoke).
func TestAction_RevokeModeDeletesAnEarlierJobsToken(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	first := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0], "revoke", "false"))
	id := first.Main.Outputs["token-id"]
	if first.Main.Failed || id == "" || len(w.children()) != 1 {
		t.Fatalf("first job did not leave one token:\n%s", first.Main.Log)
	}
	second := w.run(t, w.with("mode", "revoke", "token-id", id))
	if second.Main.Failed {
		t.Fatalf("revoke job failed:\n%s", second.Main.Log)
	}
	if n := len(w.children()); n != 0 {
		t.Errorf("%d tokens alive after mode: revoke", n)
	}
	// Revoking again: the token is already gone, which is fine.
	third := w.run(t, w.with("mode", "revoke", "token-id", id))
	if third.Main.Failed {
		t.Errorf("revoking a deleted token failed:\n%s", third.Main.Log)
	}
}

// TestAction_SweepDeletesOnlyOwnExpiredTokens: sweep removes expired
// tokens named with the tool's prefix and never touches any other.
func TestAction_SweepDeletesOnlyOwnExpiredTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	issue := func(name string, expires time.Time) string {
		id, _ := w.e.IssueUserToken(w.seeded.UserID, emulator.TokenSpec{Name: name, ExpiresOn: expires})
		return id
	}
	ownExpired := issue("cf-scoped-token octo-org/octo-repo 1.1 deploy 0123456789ab", past)
	keep := []string{
		issue("cf-scoped-token octo-org/octo-repo 2.1 deploy 0123456789ac", future), // not expired
		issue("terraform ci", past),                // not ours
		issue("cf-scoped-token-lookalike 1", past), // not our prefix
		issue("my cf-scoped-token deploy 1", past), // prefix not at the start
	}
	job := w.run(t, w.with("mode", "sweep"))
	if job.Main.Failed {
		t.Fatalf("sweep failed:\n%s", job.Main.Log)
	}
	alive := map[string]bool{}
	for _, tok := range w.e.Tokens() {
		alive[tok.ID] = true
	}
	if alive[ownExpired] {
		t.Error("sweep left this tool's expired token")
	}
	for _, id := range keep {
		if !alive[id] {
			t.Errorf("sweep deleted token %s, which it must never touch", id)
		}
	}
}

// TestAction_PostFailureNamesTokenAndExpiry: when the token cannot be
// deleted, post fails with one ::error:: that names the token id and when
// it expires by itself.
func TestAction_PostFailureNamesTokenAndExpiry(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	ctx := context.Background()
	step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0])}
	main := w.mustRunMain(t, step)
	// 403 is not retried, so the test does not wait out the backoff.
	w.e.AddFault(emulator.Fault{Route: "DELETE /user/tokens/{token_id}", Kind: emulator.Status, Status: 403})
	post := w.runner.RunPost(ctx, step, main.State)
	(&ghactiontest.Job{Main: main, Post: post}).AssertNoLeaks(t, w.seeded.UserToken, main.Outputs["token"])
	errs := post.Annotations("error")
	if post.ExitCode != 1 || len(errs) != 1 {
		t.Fatalf("post: exit %d with %d errors, want 1 and 1\n%s", post.ExitCode, len(errs), post.Log)
	}
	for _, want := range []string{main.Outputs["token-id"], main.Outputs["expires-at"]} {
		if !strings.Contains(errs[0].Data, want) {
			t.Errorf("post error %q does not name %q", errs[0].Data, want)
		}
	}
}

// TestAction_QuotaMakesRoomFromOwnExpiredTokens: at the user's token
// quota, the action removes this tool's own expired tokens and creates
// the token; tokens that are not its own are never touched.
func TestAction_QuotaMakesRoomFromOwnExpiredTokens(t *testing.T) {
	t.Parallel()
	w := newWorld(t)
	limits := emulator.DefaultLimits()
	limits.UserTokenQuota = 4 // the parent, one foreign token, two of ours that expired
	w.e.SetLimits(limits)
	past := time.Now().Add(-time.Hour)
	foreign, _ := w.e.IssueUserToken(w.seeded.UserID, emulator.TokenSpec{Name: "terraform ci", ExpiresOn: past})
	for _, n := range []string{"1", "2"} {
		w.e.IssueUserToken(w.seeded.UserID, emulator.TokenSpec{Name: "cf-scoped-token octo-org/octo-repo " + n + ".1 deploy 0123456789ab", ExpiresOn: past})
	}
	job := w.run(t, w.with("account-ids", w.seeded.AccountIDs[0]))
	if job.Main.Failed || job.Post.Failed {
		t.Fatalf("main or post failed:\n%s\n%s", job.Main.Log, job.Post.Log)
	}
	if live := w.children(); len(live) != 1 || live[0].ID != foreign {
		t.Errorf("after the job, alive besides the parents: %v; want only the foreign token", live)
	}

	// Full of tokens that are not ours: a plain error, nothing deleted.
	w2 := newWorld(t)
	limits.UserTokenQuota = 2
	w2.e.SetLimits(limits)
	w2.e.IssueUserToken(w2.seeded.UserID, emulator.TokenSpec{Name: "terraform ci", ExpiresOn: past})
	job = w2.run(t, w2.with("account-ids", w2.seeded.AccountIDs[0]))
	errs := job.Main.Annotations("error")
	if job.Main.ExitCode != 1 || len(errs) != 1 || !strings.Contains(errs[0].Data, "quota") {
		t.Fatalf("at a quota full of foreign tokens: exit %d, errors %v", job.Main.ExitCode, errs)
	}
	if n := len(w2.children()); n != 1 {
		t.Errorf("%d foreign tokens left, want 1 (never touched)", n)
	}
}

// TestAction_RequestsPerPhase: SPEC "As few requests as the API allows" —
// on a run without faults main sends one permission-group look-up, one
// create and one verify, and post one DELETE; with verify: false, main two.
func TestAction_RequestsPerPhase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		verify string
		main   []string
	}{
		{"true", []string{"GET /user/tokens/permission_groups", "POST /user/tokens", "GET /user/tokens/verify"}},
		{"false", []string{"GET /user/tokens/permission_groups", "POST /user/tokens"}},
	} {
		t.Run("verify "+tc.verify, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t)
			step := ghactiontest.Step{With: w.with("account-ids", w.seeded.AccountIDs[0], "verify", tc.verify)}
			main := w.mustRunMain(t, step)
			routes := func(reqs []emulator.Request) []string {
				var out []string
				for _, r := range reqs {
					out = append(out, r.Route)
				}
				return out
			}
			mainReqs := w.e.Requests()
			if diff := cmp.Diff(tc.main, routes(mainReqs)); diff != "" {
				t.Errorf("main's requests (-want +got):\n%s", diff)
			}
			post := w.runner.RunPost(context.Background(), step, main.State)
			if post.Failed {
				t.Fatalf("post failed:\n%s", post.Log)
			}
			if diff := cmp.Diff([]string{"DELETE /user/tokens/{token_id}"}, routes(w.e.Requests()[len(mainReqs):])); diff != "" {
				t.Errorf("post's requests (-want +got):\n%s", diff)
			}
		})
	}
}
