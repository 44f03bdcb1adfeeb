package bench

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
	"github.com/cf-scoped-token/cf-scoped-token/internal/ghaction/ghactiontest"
	"github.com/cf-scoped-token/cf-scoped-token/internal/token"
)

// The defaults are the small run that `go test ./bench` does; bench/run.sh passes the full
// one (300 jobs, 120 requests per 30 s).
var (
	scaleJobs   = flag.Int("scale.jobs", 20, "TestScale: jobs started at once")
	scaleLimit  = flag.Int("scale.limit", 12, "TestScale: requests a token may make per window")
	scaleWindow = flag.Duration("scale.window", 2*time.Second, "TestScale: the rate-limit window")
	scaleReport = flag.String("scale.report", "", "TestScale: write the results as Markdown to this file")
)

// TestScale starts many jobs at once — each the binary's main then post through the runner
// simulation — against one parent token, under a rate limit scaled down from Cloudflare's
// 1200 requests per 5 minutes. The children are account-owned on one account, so the
// quotas stay Cloudflare's own (50 per user, 500 per account) and 300 jobs fit.
//
// Whatever the limit does to them, every job must end clean: a failed step says it was the
// rate limit, no token outlives its post step, and no secret is printed.
func TestScale(t *testing.T) {
	t.Parallel()
	limits := emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 500, RateLimit: *scaleLimit, RateWindow: *scaleWindow}
	w := newWorld(t, 0, limits)
	step := ghactiontest.Step{With: map[string]string{
		"api-token":   w.seeded.AccountToken,
		"api-url":     w.apiURL,
		"owner":       "account",
		"account-ids": emulator.SeedAccount1,
		"scopes":      jobScopes,
		"ttl":         jobTTL.String(),
	}}

	n := *scaleJobs
	jobs := make([]*ghactiontest.Job, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			jobs[i] = w.runner.Run(t.Context(), step)
		})
	}
	t0 := time.Now()
	close(start)
	wg.Wait()
	res := analyze(w, limits, jobs, t0, time.Since(t0))

	t.Logf("\n%s", res.markdown())
	if *scaleReport != "" {
		if err := os.WriteFile(*scaleReport, []byte(res.markdown()), 0o600); err != nil {
			t.Error(err)
		}
	}

	for i, job := range jobs {
		for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
			switch {
			case st == nil:
				t.Errorf("job %d: no post stage", i)
			case st.Err != nil:
				t.Errorf("job %d: %s did not run: %v", i, st.Phase, st.Err)
			case st.Failed && !namesRateLimit(st):
				t.Errorf("job %d: %s failed, and not with an ::error:: that names the rate limit:\n%s", i, st.Phase, w.redact(st.Log))
			}
		}
		secrets := []string{w.seeded.AccountToken, w.seeded.UserToken}
		if child := job.Main.Outputs["token"]; child != "" {
			secrets = append(secrets, child)
		}
		job.AssertNoLeaks(t, secrets...)
	}
	if res.orphans != 0 {
		t.Errorf("%d child tokens are alive after every post step: orphans", res.orphans)
	}
	if res.succeeded == 0 {
		t.Errorf("no job succeeded: the limit (%d per %v) leaves no room for %d jobs", limits.RateLimit, limits.RateWindow, n)
	}
}

// namesRateLimit reports whether a failed stage said why: every ::error:: it wrote names the
// rate limit (the 429 and the hint), and there is at least one.
func namesRateLimit(st *ghactiontest.Stage) bool {
	errs := st.Annotations("error")
	for _, e := range errs {
		msg := strings.ToLower(e.Data)
		if !strings.Contains(msg, "429") || !strings.Contains(msg, "rate limit") {
			return false
		}
	}
	return len(errs) > 0
}

// scaleResult is what a scale run did.
type scaleResult struct {
	limits                 emulator.Limits
	jobs, succeeded        int
	failedMain, failedPost int // jobs whose main (no token handed out) or only post failed
	failuresNamed          int // failed stages whose ::error:: names the rate limit
	failedStages           int
	requests, rejected     int // requests in all, and those answered 429
	wall                   time.Duration
	orphans                int
	orphansFromPost        int               // of those, tokens main handed over and post did not delete
	causes                 map[string]int    // why steps failed: their ::error::, ids and names elided
	maxDeleteRefusals      int               // the most 429s one token's DELETE got
	routes                 map[string][2]int // route → requests, 429s
	perSecond              [][2]int          // second since the start → requests, 429s
}

func analyze(w *world, limits emulator.Limits, jobs []*ghactiontest.Job, t0 time.Time, wall time.Duration) *scaleResult {
	r := &scaleResult{limits: limits, jobs: len(jobs), wall: wall, routes: map[string][2]int{}, causes: map[string]int{}}
	handedOver := map[string]bool{}
	for _, job := range jobs {
		if id := job.State["token-id"]; id != "" {
			handedOver[id] = true
		}
		mainFailed := job.Main.Failed
		postFailed := job.Post == nil || job.Post.Failed
		switch {
		case !mainFailed && !postFailed:
			r.succeeded++
		case mainFailed:
			r.failedMain++
		default:
			r.failedPost++
		}
		for _, st := range []*ghactiontest.Stage{job.Main, job.Post} {
			if st != nil && st.Failed {
				r.failedStages++
				if namesRateLimit(st) {
					r.failuresNamed++
				}
				r.causes[st.Phase+": "+cause(st)]++
			}
		}
	}
	for _, tok := range w.children() {
		r.orphans++
		if handedOver[tok.ID] {
			r.orphansFromPost++
		}
	}
	reqs := w.e.Requests()
	r.requests = len(reqs)
	deleteRefusals := map[string]int{} // path → 429s
	for _, q := range reqs {
		if q.Method == http.MethodDelete && q.Status == http.StatusTooManyRequests {
			deleteRefusals[q.Path]++
			r.maxDeleteRefusals = max(r.maxDeleteRefusals, deleteRefusals[q.Path])
		}
	}
	for _, q := range reqs {
		rejected := 0
		if q.Status == http.StatusTooManyRequests {
			rejected = 1
			r.rejected++
		}
		rt := routes([]emulator.Request{q})[0]
		c := r.routes[rt]
		r.routes[rt] = [2]int{c[0] + 1, c[1] + rejected}
		sec := int(q.Arrived.Sub(t0) / time.Second)
		for len(r.perSecond) <= sec {
			r.perSecond = append(r.perSecond, [2]int{})
		}
		r.perSecond[sec][0]++
		r.perSecond[sec][1] += rejected
	}
	return r
}

// Things that differ from one job's error to the next, elided so that causes can be counted.
var (
	causeName = regexp.MustCompile(`"` + regexp.QuoteMeta(strings.TrimSpace(token.NamePrefix)) + ` [^"]*"`)
	causeID   = regexp.MustCompile(`[0-9a-f]{32}`)
	causeTime = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ`)
	causeTry  = regexp.MustCompile(`after \d+ attempts`)
	causeWait = regexp.MustCompile(`retry after \d+s`)
)

// cause says why a stage failed: its first ::error:: with ids, names, times, attempts and
// waits elided, or
// how it ended when it wrote none.
func cause(st *ghactiontest.Stage) string {
	errs := st.Annotations("error")
	if len(errs) == 0 {
		if st.ExitCode > 128 && st.Phase == "post" {
			return fmt.Sprintf("no ::error::; ended by signal %d (the runner simulation stops a post stage after 10 minutes)", st.ExitCode-128)
		}
		if st.ExitCode > 128 {
			return fmt.Sprintf("no ::error::; ended by signal %d", st.ExitCode-128)
		}
		return fmt.Sprintf("no ::error::; exit code %d", st.ExitCode)
	}
	msg := strings.ReplaceAll(errs[0].Data, "\n", " ")
	msg = causeName.ReplaceAllString(msg, "{name}")
	msg = causeID.ReplaceAllString(msg, "{id}")
	msg = causeTry.ReplaceAllString(msg, "after {n} attempts")
	msg = causeWait.ReplaceAllString(msg, "retry after {n}s")
	return causeTime.ReplaceAllString(msg, "{time}")
}

// markdown is the report: a summary table, requests by route, and a histogram of requests
// per second, which shows whether retries come back spread out or in lock step.
func (r *scaleResult) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d jobs started at once, each main then post through the runner simulation, one account-owned parent token; "+
		"children account-owned on one account (quotas on: 50 per user, 500 per account); rate limit %d requests per %v per token.\n\n",
		r.jobs, r.limits.RateLimit, r.limits.RateWindow)
	fmt.Fprintln(&b, "| jobs | succeeded | failed in main | failed in post | failed steps whose ::error:: names the rate limit | requests (incl. retries) | answered 429 | wall | orphans |")
	fmt.Fprintln(&b, "|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(&b, "| %d | %d | %d | %d | %d of %d | %d | %d | %.1f s | %d |\n\n", r.jobs, r.succeeded, r.failedMain, r.failedPost,
		r.failuresNamed, r.failedStages, r.requests, r.rejected, r.wall.Seconds(), r.orphans)

	fmt.Fprintf(&b, "The unluckiest delete was refused %d times in a row (a 429 uses up no attempt; post waits up to its 6-minute deadline).\n\n", r.maxDeleteRefusals)
	if r.orphans > 0 {
		fmt.Fprintf(&b, "Orphans: %d handed over by main and not deleted by post; %d made by a main that failed and did not hand them over.\n\n",
			r.orphansFromPost, r.orphans-r.orphansFromPost)
	}
	if len(r.causes) > 0 {
		fmt.Fprintln(&b, "| failed steps | why (the first ::error::; ids, names, times, attempts and waits elided) |")
		fmt.Fprintln(&b, "|---|---|")
		causes := slices.SortedFunc(maps.Keys(r.causes), func(a, b string) int {
			return cmp.Or(r.causes[b]-r.causes[a], strings.Compare(a, b))
		})
		for _, c := range causes {
			fmt.Fprintf(&b, "| %d | %s |\n", r.causes[c], strings.ReplaceAll(c, "|", `\|`))
		}
		fmt.Fprintln(&b)
	}
	fmt.Fprintln(&b, "| route | requests | answered 429 |")
	fmt.Fprintln(&b, "|---|---|---|")
	for _, rt := range slices.Sorted(maps.Keys(r.routes)) {
		c := r.routes[rt]
		fmt.Fprintf(&b, "| `%s` | %d | %d |\n", rt, c[0], c[1])
	}
	fmt.Fprintln(&b)
	r.histogram(&b)
	return b.String()
}

// histogram writes requests per second since the start: one line per second that saw any
// ('#' answered, 'x' refused with 429, scaled to the busiest second), runs of empty seconds
// folded into one line.
func (r *scaleResult) histogram(w io.Writer) {
	busiest, active := 0, 0
	for _, c := range r.perSecond {
		busiest = max(busiest, c[0])
		if c[0] > 0 {
			active++
		}
	}
	windowSec := r.limits.RateWindow.Seconds()
	fmt.Fprintf(w, "Requests per second since the start: the busiest second saw %d (the limit is %d per %.0f s, %.1f/s on average); "+
		"%d of %d seconds saw any.\n\n", busiest, r.limits.RateLimit, windowSec, float64(r.limits.RateLimit)/windowSec, active, len(r.perSecond))
	fmt.Fprintln(w, "```")
	fmt.Fprintln(w, "   s  req  429")
	const width = 60
	scale := 1.0
	if busiest > width {
		scale = float64(width) / float64(busiest)
	}
	for sec := 0; sec < len(r.perSecond); sec++ {
		c := r.perSecond[sec]
		if c[0] == 0 {
			end := sec
			for end+1 < len(r.perSecond) && r.perSecond[end+1][0] == 0 {
				end++
			}
			if end > sec {
				fmt.Fprintf(w, "%4d–%d: none\n", sec, end)
			} else {
				fmt.Fprintf(w, "%4d    0    0\n", sec)
			}
			sec = end
			continue
		}
		ok, refused := int(float64(c[0]-c[1])*scale+0.5), int(float64(c[1])*scale+0.5)
		fmt.Fprintf(w, "%4d %4d %4d %s%s\n", sec, c[0], c[1], strings.Repeat("#", ok), strings.Repeat("x", refused))
	}
	fmt.Fprintln(w, "```")
}
