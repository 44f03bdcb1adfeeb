package bench

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cf-scoped-token/cf-scoped-token/internal/emulator"
)

var reportFile = flag.String("report", "", "BenchmarkJob: write the results as Markdown tables to this file")

// latencies are the injected per-request delays: loopback, a nearby API, a far one.
var latencies = []time.Duration{0, 20 * time.Millisecond, 100 * time.Millisecond}

// rssRuns is how many extra runs per latency go through the probe to read peak RSS.
const rssRuns = 3

// Targets the binary is held to (reported, not asserted: the benchmark measures what is).
const (
	overheadBudget   = 30 * time.Millisecond // main+post ≤ its requests' latencies + this
	baselineRatioMax = 0.9                   // main+post ≤ this × baseline at targetLatency
	targetLatency    = 100 * time.Millisecond
	firstRequestMax  = 5 * time.Millisecond // process start to first request
)

// BenchmarkJob runs a job — the binary's main then post, and baseline.sh — once per
// iteration at each latency, on one emulator per latency with no rate limit (hundreds of
// runs would hit it, and waiting out a limit is not what this measures). Each iteration is
// one run; run it with -benchtime=Nx. Custom metrics give medians; -report writes the full
// tables.
func BenchmarkJob(b *testing.B) {
	haveTools(b)
	results := make([]*latencyResult, len(latencies))
	for i, d := range latencies {
		b.Run(fmt.Sprintf("latency=%dms", d.Milliseconds()), func(b *testing.B) {
			results[i] = benchLatency(b, d)
		})
	}
	if *reportFile == "" {
		return
	}
	var done []*latencyResult
	for _, r := range results {
		if r != nil {
			done = append(done, r)
		}
	}
	f, err := os.Create(*reportFile)
	if err != nil {
		b.Fatal(err)
	}
	writeJobReport(f, done)
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
}

func benchLatency(b *testing.B, latency time.Duration) *latencyResult {
	w := newWorld(b, latency, emulator.Limits{UserTokenQuota: 50, AccountTokenQuota: 500})
	ctx := b.Context()
	w.measure(b, ctx, 0, true) // warm-up, not counted: page cache, emulator, first connections
	var samples []sample
	for b.Loop() {
		samples = append(samples, w.measure(b, ctx, len(samples), true))
	}
	r := summarize(latency, samples)
	r.main.maxRSS, r.post.maxRSS, r.baseline.maxRSS = w.peakRSS(b, ctx, rssRuns, true)
	if live := w.children(); len(live) != 0 {
		b.Errorf("%d child tokens are alive after the runs, want 0", len(live))
	}
	b.ReportMetric(float64(r.main.reqMax), "main-req")
	b.ReportMetric(float64(r.post.reqMax), "post-req")
	b.ReportMetric(float64(r.baseline.reqMax), "baseline-req")
	b.ReportMetric(ms(r.job.wallP50), "job-p50-ms")
	b.ReportMetric(ms(r.baseline.wallP50), "baseline-p50-ms")
	b.ReportMetric(r.ratio(), "job/baseline")
	b.ReportMetric(ms(r.main.firstP50), "main-first-req-ms")
	return r
}

// phaseStats summarizes one phase over the runs.
type phaseStats struct {
	reqMin, reqMax                     int
	wallP50, wallP90, cpuP50, firstP50 time.Duration
	maxRSS                             int64 // bytes, from the probe runs; 0 if unknown
}

// latencyResult is one latency's summary; job is main+post, run by run.
type latencyResult struct {
	latency                   time.Duration
	runs                      int
	main, post, job, baseline phaseStats
	// The routes of the last run's phases, ids replaced by {id}.
	mainRoutes, postRoutes, baselineRoutes []string
}

func summarize(latency time.Duration, samples []sample) *latencyResult {
	stats := func(get func(sample) phase) phaseStats {
		var walls, cpus, firsts []time.Duration
		st := phaseStats{reqMin: -1}
		for _, s := range samples {
			p := get(s)
			walls, cpus, firsts = append(walls, p.wall), append(cpus, p.cpu), append(firsts, p.firstRequest)
			n := p.requests()
			if st.reqMin < 0 || n < st.reqMin {
				st.reqMin = n
			}
			st.reqMax = max(st.reqMax, n)
		}
		st.wallP50, st.wallP90 = percentile(walls, 0.5), percentile(walls, 0.9)
		st.cpuP50, st.firstP50 = percentile(cpus, 0.5), percentile(firsts, 0.5)
		return st
	}
	r := &latencyResult{
		latency:  latency,
		runs:     len(samples),
		main:     stats(func(s sample) phase { return s.main }),
		post:     stats(func(s sample) phase { return s.post }),
		baseline: stats(func(s sample) phase { return s.baseline }),
		job: stats(func(s sample) phase {
			return phase{
				reqs: slices.Concat(s.main.reqs, s.post.reqs),
				wall: s.main.wall + s.post.wall, cpu: s.main.cpu + s.post.cpu,
				firstRequest: s.main.firstRequest,
			}
		}),
	}
	if len(samples) > 0 {
		last := samples[len(samples)-1]
		r.mainRoutes, r.postRoutes, r.baselineRoutes = routes(last.main.reqs), routes(last.post.reqs), routes(last.baseline.reqs)
	}
	return r
}

// hexID is a token or account id in a path.
var hexID = regexp.MustCompile(`/[0-9a-f]{32}(/|$)`)

// routes names each request as METHOD path below the base path, ids replaced by {id}.
func routes(rs []emulator.Request) []string {
	var out []string
	for _, r := range rs {
		p := strings.TrimPrefix(r.Path, emulator.BasePath)
		p = hexID.ReplaceAllString(p, "/{id}$1")
		out = append(out, r.Method+" "+p)
	}
	return out
}

// ratio is the median job time over the median baseline time.
func (r *latencyResult) ratio() float64 {
	if r.baseline.wallP50 == 0 {
		return 0
	}
	return float64(r.job.wallP50) / float64(r.baseline.wallP50)
}

// budget is the job's target: the latencies its requests must wait for, plus the overhead.
func (r *latencyResult) budget() time.Duration {
	return time.Duration(r.job.reqMax)*r.latency + overheadBudget
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(d time.Duration) string { return fmt.Sprintf("%.1f ms", ms(d)) }

func fmtMiB(b int64) string {
	if b <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func fmtReq(s phaseStats) string {
	if s.reqMin == s.reqMax {
		return fmt.Sprint(s.reqMax)
	}
	return fmt.Sprintf("%d–%d", s.reqMin, s.reqMax)
}

func verdict(ok bool) string {
	if ok {
		return "yes"
	}
	return "**no**"
}

// writeJobReport writes the per-phase table and the targets table.
func writeJobReport(w io.Writer, rs []*latencyResult) {
	runs := 0
	if len(rs) > 0 {
		runs = rs[0].runs
	}
	fmt.Fprintf(w, "%d runs per latency (medians and p90 over them; peak RSS: the largest of %d more runs through the probe).\n\n", runs, rssRuns)
	fmt.Fprintln(w, "| latency | phase | requests | wall p50 | wall p90 | CPU p50 | peak RSS | start → 1st request p50 |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		lat := fmt.Sprintf("%d ms", r.latency.Milliseconds())
		for _, row := range []struct {
			name string
			s    phaseStats
		}{
			{"main", r.main}, {"post", r.post}, {"main+post", r.job}, {"baseline.sh", r.baseline},
		} {
			rss, first := fmtMiB(row.s.maxRSS), fmtMS(row.s.firstP50)
			if row.name == "main+post" {
				rss, first = "–", "–"
			}
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", lat, row.name, fmtReq(row.s),
				fmtMS(row.s.wallP50), fmtMS(row.s.wallP90), fmtMS(row.s.cpuP50), rss, first)
			lat = ""
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "Targets: main+post within its requests' latencies + %d ms; main+post ≤ %.1f× baseline at %d ms; start → first request under %d ms (main and post).\n\n",
		overheadBudget.Milliseconds(), baselineRatioMax, targetLatency.Milliseconds(), firstRequestMax.Milliseconds())
	fmt.Fprintln(w, "| latency | main+post p50 | budget (requests × latency + 30 ms) | within budget | baseline p50 | ratio of medians (main+post) / baseline | ≤ 0.9× baseline | 1st request < 5 ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		within := r.job.wallP50 <= r.budget()
		ratio := "–"
		if r.latency == targetLatency {
			ratio = verdict(r.ratio() <= baselineRatioMax)
		}
		first := verdict(r.main.firstP50 < firstRequestMax && r.post.firstP50 < firstRequestMax)
		fmt.Fprintf(w, "| %d ms | %s | %s | %s | %s | %.2f | %s | %s |\n", r.latency.Milliseconds(),
			fmtMS(r.job.wallP50), fmtMS(r.budget()), verdict(within), fmtMS(r.baseline.wallP50), r.ratio(), ratio, first)
	}
	if len(rs) > 0 {
		r := rs[len(rs)-1]
		fmt.Fprintf(w, "\nRequests of one run at %d ms: %s.\n", r.latency.Milliseconds(), routeSummary(r))
	}
}

// routeSummary lists the routes of each phase of the last run.
func routeSummary(r *latencyResult) string {
	var parts []string
	for _, p := range []struct {
		name   string
		routes []string
	}{{"main", r.mainRoutes}, {"post", r.postRoutes}, {"baseline.sh", r.baselineRoutes}} {
		parts = append(parts, fmt.Sprintf("%s `%s`", p.name, strings.Join(p.routes, "`, `")))
	}
	return strings.Join(parts, "; ")
}
