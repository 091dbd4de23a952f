// Command pytest-chaos-load sends HTTP requests for chaos.load.http, from a pod inside the
// cluster, and reports what it got as one JSON line.
//
//	pytest-chaos-load -url URL [-rate N] [-concurrency N] [-duration 30s] [-method GET]
//	                  [-header 'Name: value']... [-timeout 2s] [-summary /dev/termination-log]
//
// With -rate > 0 requests start on a fixed schedule (N per second), at most -concurrency at a
// time: when every worker is busy, the schedule slips rather than bursting to catch up, and the
// summary's achieved rate says so. With -rate 0 each of the -concurrency workers sends its next
// request as soon as the previous one ends.
//
// It stops starting requests after -duration and waits for those in flight (each bounded by
// -timeout). On SIGTERM or SIGINT it stops at once, cancelling what is in flight (counted as
// "cancelled", not as errors), so a pod deleted mid-run still reports a partial summary. The
// summary goes to stdout and to the -summary file (the container's termination message, which
// the kubelet puts in the pod's status). Redirects are not followed: a 3xx is a status like
// another. "ok" counts answers with a status below 400.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Error kinds, as the summary counts them.
const (
	kindTimeout = "timeout"
	kindConnect = "connect"
	kindDNS     = "dns"
	kindOther   = "other"
)

// sampleLength bounds each error sample: the termination message holds at most 4096 bytes.
const sampleLength = 160

// messageLimit is what the kubelet keeps of a termination message.
const messageLimit = 4096

type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

func (h *headerList) Set(value string) error {
	name, _, found := strings.Cut(value, ":")
	if !found || strings.TrimSpace(name) == "" {
		return fmt.Errorf("header %q must be 'Name: value'", value)
	}
	*h = append(*h, value)
	return nil
}

type config struct {
	url         string
	method      string
	headers     headerList
	rate        float64
	concurrency int
	duration    time.Duration
	timeout     time.Duration
	summaryPath string
}

// tally is what one worker saw; merged at the end.
type tally struct {
	requests  int
	ok        int
	cancelled int
	status    map[int]int
	errors    map[string]int
	samples   map[string]string
	latencies []float64 // milliseconds, of the requests that got an answer
}

func newTally() *tally {
	return &tally{status: map[int]int{}, errors: map[string]int{}, samples: map[string]string{}}
}

func (t *tally) merge(other *tally) {
	t.requests += other.requests
	t.ok += other.ok
	t.cancelled += other.cancelled
	for code, n := range other.status {
		t.status[code] += n
	}
	for kind, n := range other.errors {
		t.errors[kind] += n
	}
	for kind, text := range other.samples {
		if _, seen := t.samples[kind]; !seen {
			t.samples[kind] = text
		}
	}
	t.latencies = append(t.latencies, other.latencies...)
}

// Summary is the JSON line the program ends with.
type Summary struct {
	URL          string             `json:"url"`
	Method       string             `json:"method"`
	RateAsked    *float64           `json:"rate_asked"`
	Concurrency  int                `json:"concurrency"`
	DurationS    float64            `json:"duration_s"`
	ElapsedS     float64            `json:"elapsed_s"`
	Requests     int                `json:"requests"`
	OK           int                `json:"ok"`
	Status       map[string]int     `json:"status"`
	Errors       map[string]int     `json:"errors"`
	ErrorSamples map[string]string  `json:"error_samples"`
	Cancelled    int                `json:"cancelled"`
	Rate         float64            `json:"rate"`
	LatencyMS    map[string]float64 `json:"latency_ms"`
	Interrupted  bool               `json:"interrupted"`
}

// percentile is the nearest-rank percentile p (0 < p <= 100) of sorted values; NaN if empty.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(sorted) {
		rank = len(sorted)
	}
	return sorted[rank-1]
}

// latencySummary has p50, p95, p99 and max in milliseconds (rounded to 0.01); empty if none.
func latencySummary(latencies []float64) map[string]float64 {
	out := map[string]float64{}
	if len(latencies) == 0 {
		return out
	}
	sorted := append([]float64(nil), latencies...)
	sort.Float64s(sorted)
	for name, p := range map[string]float64{"p50": 50, "p95": 95, "p99": 99, "max": 100} {
		out[name] = math.Round(percentile(sorted, p)*100) / 100
	}
	return out
}

// classify says what kind of failure err is: a timeout, a connection that could not be made
// (refused, unreachable), a name that did not resolve, or anything else.
func classify(err error) string {
	var dns *net.DNSError
	if errors.As(err, &dns) {
		if dns.IsTimeout {
			return kindTimeout
		}
		return kindDNS
	}
	var netErr net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout()) {
		return kindTimeout
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return kindConnect
	}
	if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH) {
		return kindConnect
	}
	return kindOther
}

func shorten(text string) string {
	if len(text) > sampleLength {
		return text[:sampleLength-3] + "..."
	}
	return text
}

type loader struct {
	cfg    config
	client *http.Client
	header http.Header
}

func newLoader(cfg config) *loader {
	transport := &http.Transport{
		Proxy:               nil, // in the cluster, straight to the URL
		DialContext:         (&net.Dialer{Timeout: cfg.timeout, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        cfg.concurrency,
		MaxIdleConnsPerHost: cfg.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	header := http.Header{}
	for _, line := range cfg.headers {
		name, value, _ := strings.Cut(line, ":")
		header.Add(strings.TrimSpace(name), strings.TrimSpace(value))
	}
	return &loader{
		cfg:    cfg,
		header: header,
		client: &http.Client{
			Transport:     transport,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// one sends one request, bounded by the timeout and cancelled by abort; it records the outcome.
func (l *loader) one(abort context.Context, t *tally) {
	ctx, cancel := context.WithTimeout(abort, l.cfg.timeout)
	defer cancel()
	request, err := http.NewRequestWithContext(ctx, l.cfg.method, l.cfg.url, nil)
	if err != nil {
		t.requests++
		t.errors[kindOther]++
		t.samples[kindOther] = shorten(err.Error())
		return
	}
	request.Header = l.header.Clone()
	if host := request.Header.Get("Host"); host != "" {
		request.Host = host
	}
	started := time.Now()
	response, err := l.client.Do(request)
	if err == nil {
		_, err = io.Copy(io.Discard, response.Body)
		response.Body.Close()
		if err == nil || abort.Err() == nil {
			// An answer, even if its body was cut short by the timeout: its status counts.
			t.requests++
			t.status[response.StatusCode]++
			if response.StatusCode < 400 {
				t.ok++
			}
			t.latencies = append(t.latencies, float64(time.Since(started).Microseconds())/1000)
			return
		}
	}
	if abort.Err() != nil {
		t.cancelled++ // stopped by SIGTERM: neither an answer nor the target's failure
		return
	}
	kind := classify(err)
	t.requests++
	t.errors[kind]++
	if _, seen := t.samples[kind]; !seen {
		t.samples[kind] = shorten(err.Error())
	}
}

// run sends requests until the duration is over (stop) or abort, and returns what they got.
func (l *loader) run(stop, abort context.Context) *tally {
	tokens := make(chan struct{})
	paced := l.cfg.rate > 0
	if paced {
		go schedule(stop, tokens, l.cfg.rate)
	}
	total := newTally()
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range l.cfg.concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := newTally()
			for {
				if paced {
					if _, open := <-tokens; !open {
						break // the schedule ended: the duration is over, or SIGTERM
					}
				} else if stop.Err() != nil {
					break
				}
				l.one(abort, mine)
			}
			mu.Lock()
			total.merge(mine)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return total
}

// schedule sends a token every 1/rate seconds until stop, never bursting to catch up.
func schedule(stop context.Context, tokens chan<- struct{}, rate float64) {
	defer close(tokens)
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-stop.Done():
			return
		case <-timer.C:
		}
		select {
		case <-stop.Done():
			return
		case tokens <- struct{}{}:
		}
		next = next.Add(interval)
		if now := time.Now(); next.Before(now) {
			next = now // every worker was busy: slip, do not burst
		}
		timer.Reset(time.Until(next))
	}
}

func summarize(cfg config, t *tally, elapsed time.Duration, interrupted bool) Summary {
	status := map[string]int{}
	for code, n := range t.status {
		status[strconv.Itoa(code)] = n
	}
	counts := map[string]int{kindTimeout: 0, kindConnect: 0, kindDNS: 0, kindOther: 0}
	for kind, n := range t.errors {
		counts[kind] += n
	}
	var rateAsked *float64
	if cfg.rate > 0 {
		rateAsked = &cfg.rate
	}
	rate := 0.0
	if elapsed > 0 {
		rate = math.Round(float64(t.requests)/elapsed.Seconds()*100) / 100
	}
	return Summary{
		URL:          cfg.url,
		Method:       cfg.method,
		RateAsked:    rateAsked,
		Concurrency:  cfg.concurrency,
		DurationS:    cfg.duration.Seconds(),
		ElapsedS:     math.Round(elapsed.Seconds()*1000) / 1000,
		Requests:     t.requests,
		OK:           t.ok,
		Status:       status,
		Errors:       counts,
		ErrorSamples: t.samples,
		Cancelled:    t.cancelled,
		Rate:         rate,
		LatencyMS:    latencySummary(t.latencies),
		Interrupted:  interrupted,
	}
}

// fit encodes the summary in at most limit bytes, for the termination message: without the
// error samples if need be, then with the URL cut short.
func fit(summary Summary, limit int) ([]byte, error) {
	line, err := json.Marshal(summary)
	if err != nil || len(line) <= limit {
		return line, err
	}
	summary.ErrorSamples = map[string]string{}
	if line, err = json.Marshal(summary); err != nil || len(line) <= limit {
		return line, err
	}
	if len(summary.URL) > sampleLength {
		summary.URL = summary.URL[:sampleLength-3] + "..."
	}
	return json.Marshal(summary)
}

func parseFlags(args []string) (config, error) {
	var cfg config
	flags := flag.NewFlagSet("pytest-chaos-load", flag.ContinueOnError)
	flags.StringVar(&cfg.url, "url", "", "the URL to load (http:// or https://)")
	flags.StringVar(&cfg.method, "method", "GET", "the HTTP method")
	flags.Var(&cfg.headers, "header", "a request header 'Name: value' (repeatable)")
	flags.Float64Var(&cfg.rate, "rate", 0, "requests per second (0: as fast as concurrency allows)")
	flags.IntVar(&cfg.concurrency, "concurrency", 10, "requests in flight at most")
	flags.DurationVar(&cfg.duration, "duration", 30*time.Second, "how long to send requests")
	flags.DurationVar(&cfg.timeout, "timeout", 2*time.Second, "per-request timeout")
	flags.StringVar(&cfg.summaryPath, "summary", "/dev/termination-log", "where to write the summary too")
	if err := flags.Parse(args); err != nil {
		return cfg, err
	}
	switch {
	case !strings.HasPrefix(cfg.url, "http://") && !strings.HasPrefix(cfg.url, "https://"):
		return cfg, fmt.Errorf("-url %q must start with http:// or https://", cfg.url)
	case cfg.rate < 0 || math.IsNaN(cfg.rate) || math.IsInf(cfg.rate, 0):
		return cfg, fmt.Errorf("-rate %v must be a finite number >= 0", cfg.rate)
	case cfg.concurrency < 1:
		return cfg, fmt.Errorf("-concurrency %d must be >= 1", cfg.concurrency)
	case cfg.duration <= 0:
		return cfg, fmt.Errorf("-duration %v must be positive", cfg.duration)
	case cfg.timeout <= 0:
		return cfg, fmt.Errorf("-timeout %v must be positive", cfg.timeout)
	}
	return cfg, nil
}

func main() {
	cfg, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pytest-chaos-load:", err)
		os.Exit(2)
	}
	abort, cancelAbort := context.WithCancel(context.Background())
	defer cancelAbort()
	stop, cancelStop := context.WithTimeout(abort, cfg.duration)
	defer cancelStop()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-signals
		cancelAbort()
	}()

	started := time.Now()
	total := newLoader(cfg).run(stop, abort)
	elapsed := time.Since(started)
	signal.Stop(signals)
	summary := summarize(cfg, total, elapsed, abort.Err() != nil)
	line, err := json.Marshal(summary)
	if err != nil {
		fmt.Fprintln(os.Stderr, "pytest-chaos-load: encoding the summary:", err)
		os.Exit(1)
	}
	fmt.Println(string(line))
	if cfg.summaryPath != "" {
		if short, err := fit(summary, messageLimit); err == nil {
			// Best effort: outside a container there may be no termination log.
			_ = os.WriteFile(cfg.summaryPath, short, 0o644)
		}
	}
}
