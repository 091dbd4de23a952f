// Command demo is the sample application pytest-chaos's real-node tests deploy.
//
// HTTP on $PORT (default 8080):
//
//	/          "Version: $VERSION; Release: $RELEASE"; with ?addr=<url> it calls url and
//	           returns that answer instead (a repeater, to chain services)
//	/healthz   liveness: always 200 while the process serves
//	/ready     readiness: 200, 503 once SIGTERM arrived
//	/limiter   a token bucket of 5 requests/s, burst 10; once empty, every request gets 429
//	           for a 15 s cool-down
//	/broker    JSON state of the broker client (BROKER_ADDR) or server (BROKER_LISTEN)
//
// With BROKER_ADDR=host:port it keeps one TCP connection to a broker, writes a line every
// 500 ms and reconnects with backoff when the connection breaks. With BROKER_LISTEN=:port (or
// the --broker-server flag, default :9000) it is that broker: it accepts connections and reads
// lines. SIGTERM: "received SIGTERM" is logged, readiness turns 503, in-flight requests finish,
// the process exits 0.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func env(name, fallback string) string {
	if value := os.Getenv(name); value != "" {
		return value
	}
	return fallback
}

// ---------------------------------------------------------------- limiter

// bucket is a token bucket with a cool-down once it runs dry.
type bucket struct {
	mu       sync.Mutex
	rate     float64
	burst    float64
	tokens   float64
	last     time.Time
	cooldown time.Duration
	until    time.Time
}

func newBucket(rate, burst float64, cooldown time.Duration) *bucket {
	return &bucket{rate: rate, burst: burst, tokens: burst, last: time.Now(), cooldown: cooldown}
}

// allow takes one token; false while cooling down or when the bucket is empty.
func (b *bucket) allow(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if now.Before(b.until) {
		return false
	}
	b.tokens += now.Sub(b.last).Seconds() * b.rate
	if b.tokens > b.burst {
		b.tokens = b.burst
	}
	b.last = now
	if b.tokens < 1 {
		b.until = now.Add(b.cooldown)
		b.tokens = b.burst
		return false
	}
	b.tokens--
	return true
}

// ---------------------------------------------------------------- broker

// brokerState is what /broker reports.
type brokerState struct {
	mu          sync.Mutex
	Mode        string `json:"mode"`
	Connected   bool   `json:"connected"`
	Connects    int    `json:"connects"`
	Disconnects int    `json:"disconnects"`
	LastError   string `json:"last_error"`
	Lines       int    `json:"lines"`
	Clients     int    `json:"clients"`
}

func (s *brokerState) update(change func(*brokerState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	change(s)
}

func (s *brokerState) snapshot() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	data, _ := json.Marshal(s)
	return data
}

// brokerClient keeps a connection to addr until ctx ends, reconnecting with backoff.
func brokerClient(ctx context.Context, addr string, state *brokerState) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := (&net.Dialer{Timeout: 2 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			state.update(func(s *brokerState) { s.LastError = err.Error() })
			log.Printf("broker: connect %s: %v (retry in %s)", addr, err, backoff)
			sleep(ctx, backoff)
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		state.update(func(s *brokerState) { s.Connected = true; s.Connects++ })
		log.Printf("broker: connected to %s", addr)
		err = brokerSend(ctx, conn)
		_ = conn.Close()
		state.update(func(s *brokerState) {
			s.Connected = false
			s.Disconnects++
			if err != nil {
				s.LastError = err.Error()
			}
		})
		log.Printf("broker: disconnected from %s: %v", addr, err)
	}
}

// brokerSend writes a line every 500 ms until a write fails, the peer closes, or ctx ends.
func brokerSend(ctx context.Context, conn net.Conn) error {
	closed := make(chan error, 1)
	go func() { // a read returns when the peer closes or resets the connection
		_, err := io.Copy(io.Discard, conn)
		if err == nil {
			err = io.EOF
		}
		closed <- err
	}()
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case err := <-closed:
			return err
		case <-ticker.C:
			_ = conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := fmt.Fprintf(conn, "message %d\n", n); err != nil {
				return err
			}
		}
	}
}

// brokerServer accepts connections on addr and reads their lines until ctx ends.
func brokerServer(ctx context.Context, addr string, state *brokerState) error {
	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("broker: listening on %s", addr)
	go func() { <-ctx.Done(); _ = listener.Close() }()
	for {
		conn, err := listener.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		state.update(func(s *brokerState) { s.Clients++; s.Connects++; s.Connected = true })
		go func() {
			defer conn.Close()
			scanner := bufio.NewScanner(conn)
			for scanner.Scan() {
				state.update(func(s *brokerState) { s.Lines++ })
			}
			state.update(func(s *brokerState) {
				s.Clients--
				s.Disconnects++
				s.Connected = s.Clients > 0
				if scanner.Err() != nil {
					s.LastError = scanner.Err().Error()
				}
			})
		}()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// ---------------------------------------------------------------- HTTP

type app struct {
	version, release string
	limiter          *bucket
	broker           *brokerState
	shuttingDown     atomic.Bool
	client           *http.Client
}

func (a *app) routes() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", a.root)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "OK") })
	mux.HandleFunc("/ready", a.ready)
	mux.HandleFunc("/limiter", a.limit)
	mux.HandleFunc("/broker", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(a.broker.snapshot())
	})
	return mux
}

func (a *app) root(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	addr := r.URL.Query().Get("addr")
	if addr == "" {
		fmt.Fprintf(w, "Version: %s; Release: %s\n", a.version, a.release)
		return
	}
	req, err := http.NewRequestWithContext(r.Context(), http.MethodGet, addr, nil)
	if err == nil {
		var resp *http.Response
		if resp, err = a.client.Do(req); err == nil {
			defer resp.Body.Close()
			w.WriteHeader(resp.StatusCode)
			_, _ = io.Copy(w, resp.Body)
			return
		}
	}
	log.Printf("repeater: %s: %v", addr, err)
	http.Error(w, err.Error(), http.StatusInternalServerError)
}

func (a *app) ready(w http.ResponseWriter, _ *http.Request) {
	if a.shuttingDown.Load() {
		http.Error(w, "shutting down", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "OK")
}

func (a *app) limit(w http.ResponseWriter, _ *http.Request) {
	if !a.limiter.allow(time.Now()) {
		http.Error(w, "Too many requests, cooling down", http.StatusTooManyRequests)
		return
	}
	fmt.Fprintln(w, "OK")
}

func main() {
	brokerFlag := flag.Bool("broker-server", false, "also run the broker (BROKER_LISTEN, default :9000)")
	flag.Parse()
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	a := &app{
		version: env("VERSION", "0.0.1"),
		release: env("RELEASE", "unknown"),
		limiter: newBucket(5, 10, 15*time.Second),
		broker:  &brokerState{Mode: "off"},
		client:  &http.Client{Timeout: 10 * time.Second},
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if listen := os.Getenv("BROKER_LISTEN"); listen != "" || *brokerFlag {
		a.broker.Mode = "server"
		go func() {
			if err := brokerServer(ctx, env("BROKER_LISTEN", ":9000"), a.broker); err != nil {
				log.Fatalf("broker: %v", err)
			}
		}()
	} else if addr := os.Getenv("BROKER_ADDR"); addr != "" {
		a.broker.Mode = "client"
		go brokerClient(ctx, addr, a.broker)
	}
	server := &http.Server{Addr: ":" + env("PORT", "8080"), Handler: a.routes(), ReadHeaderTimeout: 10 * time.Second}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		sig := <-signals
		if sig == syscall.SIGTERM {
			log.Print("received SIGTERM")
		} else {
			log.Printf("received %s", sig)
		}
		a.shuttingDown.Store(true)
		shutdown, stop := context.WithTimeout(context.Background(), 20*time.Second)
		defer stop()
		if err := server.Shutdown(shutdown); err != nil {
			log.Printf("shutdown: %v", err)
		}
		cancel()
		close(done)
	}()
	log.Printf("demo %s (%s) listening on %s", a.version, a.release, server.Addr)
	if err := server.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		log.Fatalf("serve: %v", err)
	}
	<-done
	log.Print("in-flight requests finished; exiting")
}
