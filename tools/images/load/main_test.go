package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestPercentileIsTheNearestRank(t *testing.T) {
	values := make([]float64, 100)
	for i := range values {
		values[i] = float64(i + 1) // 1..100
	}
	cases := map[float64]float64{50: 50, 95: 95, 99: 99, 100: 100, 0.5: 1, 1: 1}
	for p, want := range cases {
		if got := percentile(values, p); got != want {
			t.Errorf("percentile(1..100, %v) = %v, want %v", p, got, want)
		}
	}
	if got := percentile([]float64{7}, 99); got != 7 {
		t.Errorf("percentile of one value = %v, want 7", got)
	}
	if got := percentile(nil, 50); !math.IsNaN(got) {
		t.Errorf("percentile of nothing = %v, want NaN", got)
	}
	// Three values: p50 is the 2nd, p95 and p99 the 3rd.
	three := []float64{1, 2, 30}
	if percentile(three, 50) != 2 || percentile(three, 95) != 30 || percentile(three, 99) != 30 {
		t.Errorf("percentiles of %v: %v %v %v", three,
			percentile(three, 50), percentile(three, 95), percentile(three, 99))
	}
}

func TestLatencySummarySortsAndRounds(t *testing.T) {
	got := latencySummary([]float64{3.333, 1.111, 2.222})
	want := map[string]float64{"p50": 2.22, "p95": 3.33, "p99": 3.33, "max": 3.33}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("latencySummary = %v, want %v", got, want)
	}
	if len(latencySummary(nil)) != 0 {
		t.Error("latencySummary of nothing should be empty")
	}
}

func TestClassify(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	cases := []struct {
		err  error
		want string
	}{
		{fmt.Errorf("get: %w", refused), kindConnect},
		{&net.DNSError{Err: "no such host", Name: "nope", IsNotFound: true}, kindDNS},
		{&net.DNSError{Err: "i/o timeout", Name: "slow", IsTimeout: true}, kindTimeout},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), kindTimeout},
		{errors.New("EOF"), kindOther},
	}
	for _, c := range cases {
		if got := classify(c.err); got != c.want {
			t.Errorf("classify(%v) = %s, want %s", c.err, got, c.want)
		}
	}
}

func TestARatedLoadSendsTheRateAndCountsStatuses(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Test") != "on" || r.Host != "app.example" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	defer server.Close()
	cfg := config{url: server.URL, method: "GET", headers: headerList{"X-Test: on", "Host: app.example"},
		rate: 40, concurrency: 4, duration: time.Second, timeout: time.Second}
	stop, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	total := newLoader(cfg).run(stop, context.Background())
	if total.requests < 36 || total.requests > 44 {
		t.Errorf("40/s for 1s sent %d requests", total.requests)
	}
	if total.status[http.StatusTeapot] != total.requests || total.ok != 0 {
		t.Errorf("statuses %v, ok %d (418 is not ok)", total.status, total.ok)
	}
}

func TestAnAbortCancelsWhatIsInFlightWithoutCountingErrors(t *testing.T) {
	release := make(chan struct{})
	server := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		<-release
	}))
	defer server.Close()
	defer close(release)
	cfg := config{url: server.URL, method: "GET", concurrency: 2, duration: time.Minute, timeout: time.Minute}
	abort, cancelAbort := context.WithCancel(context.Background())
	stop, cancelStop := context.WithTimeout(abort, cfg.duration)
	defer cancelStop()
	time.AfterFunc(200*time.Millisecond, cancelAbort)
	total := newLoader(cfg).run(stop, abort)
	if total.requests != 0 || total.cancelled != 2 {
		t.Errorf("requests %d, cancelled %d; want 0 and 2", total.requests, total.cancelled)
	}
}

func TestARefusingTargetGivesConnectErrors(t *testing.T) {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := listener.Addr().String()
	listener.Close() // nothing listens there now
	cfg := config{url: "http://" + address + "/", method: "GET", rate: 20, concurrency: 2,
		duration: 500 * time.Millisecond, timeout: time.Second}
	stop, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	total := newLoader(cfg).run(stop, context.Background())
	summary := summarize(cfg, total, cfg.duration, false)
	if summary.Requests == 0 || summary.Errors[kindConnect] != summary.Requests || summary.OK != 0 {
		t.Errorf("summary %+v: every request should be a connect error", summary)
	}
	if summary.ErrorSamples[kindConnect] == "" {
		t.Error("no sample of the connect error")
	}
}

func TestFlagsAreChecked(t *testing.T) {
	for _, args := range [][]string{
		{"-url", "ftp://x"},
		{"-url", "http://x", "-rate", "-1"},
		{"-url", "http://x", "-concurrency", "0"},
		{"-url", "http://x", "-header", "nocolon"},
		{"-url", "http://x", "-duration", "0s"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("parseFlags(%v) accepted", args)
		}
	}
	if _, err := parseFlags([]string{"-url", "http://x", "-rate", "5"}); err != nil {
		t.Errorf("parseFlags rejected a good command line: %v", err)
	}
}

func TestASummaryFitsTheTerminationMessage(t *testing.T) {
	long := "http://web/" + strings.Repeat("x", 5000)
	summary := Summary{URL: long, ErrorSamples: map[string]string{kindOther: strings.Repeat("e", 150)}}
	line, err := fit(summary, messageLimit)
	if err != nil || len(line) > messageLimit {
		t.Fatalf("fit: %d bytes, %v", len(line), err)
	}
	if !strings.Contains(string(line), `"url":"http://web/xxx`) || strings.Contains(string(line), "eee") {
		t.Errorf("fit kept the wrong parts: %.300s", line)
	}
	small := Summary{URL: "http://web/", ErrorSamples: map[string]string{kindDNS: "lookup web"}}
	if line, _ := fit(small, messageLimit); !strings.Contains(string(line), "lookup web") {
		t.Errorf("fit dropped the samples of a small summary: %s", line)
	}
}

func TestAnUnpacedLoadKeepsEveryWorkerBusy(t *testing.T) {
	server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		time.Sleep(10 * time.Millisecond) // the server's own latency
	}))
	defer server.Close()
	cfg := config{url: server.URL, method: "GET", concurrency: 3, duration: 300 * time.Millisecond, timeout: time.Second}
	stop, cancel := context.WithTimeout(context.Background(), cfg.duration)
	defer cancel()
	total := newLoader(cfg).run(stop, context.Background())
	// 3 workers, ~10 ms each, for 300 ms: about 90; far more than one at a time would send.
	if total.requests < 45 || total.requests > 95 || total.ok != total.requests {
		t.Errorf("unpaced: %d requests, %d ok", total.requests, total.ok)
	}
}
