// pytest-chaos-dns: the local cluster's DNS server, for pods on its real node.
//
// It answers <service>.<namespace>.svc.<domain> with the Service's ClusterIP (a headless
// Service: the addresses of its ready endpoints), from a list-and-watch of the API server, and
// forwards every other name to the host's resolvers. UDP and TCP, on one address.
//
// Usage: pytest-chaos-dns CONFIG.json, where the config has listen ("ip:port"), server (the API
// server's URL), ca, cert and key (files), domain ("cluster.local") and upstreams (["ip:53"]).
package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
)

type config struct {
	Listen    string   `json:"listen"`
	Server    string   `json:"server"`
	CA        string   `json:"ca"`
	Cert      string   `json:"cert"`
	Key       string   `json:"key"`
	Domain    string   `json:"domain"`
	Upstreams []string `json:"upstreams"`
}

const ttl = 5 // seconds: Services change under chaos; resolvers must not keep old answers long

func main() {
	log.SetFlags(log.LstdFlags | log.Lmicroseconds)
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: pytest-chaos-dns CONFIG.json")
		os.Exit(2)
	}
	cfg, err := readConfig(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "pytest-chaos-dns:", err)
		os.Exit(2)
	}
	client, err := apiClient(cfg)
	if err != nil {
		log.Fatalf("API client: %v", err)
	}
	store := newStore()
	go listWatch(client, cfg.Server+"/api/v1/services", store.services.set, store.services.apply)
	go listWatch(client, cfg.Server+"/apis/discovery.k8s.io/v1/endpointslices",
		store.slices.set, store.slices.apply)
	srv := &server{store: store, domain: "." + strings.Trim(cfg.Domain, ".") + ".",
		upstreams: cfg.Upstreams}
	udp, err := net.ListenPacket("udp", cfg.Listen)
	if err != nil {
		log.Fatalf("listen udp %s: %v", cfg.Listen, err)
	}
	tcp, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		log.Fatalf("listen tcp %s: %v", cfg.Listen, err)
	}
	log.Printf("serving %s on %s (udp and tcp); other names go to %v", cfg.Domain, cfg.Listen,
		cfg.Upstreams)
	go srv.serveTCP(tcp)
	srv.serveUDP(udp)
}

func readConfig(path string) (*config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cfg := &config{}
	if err := json.Unmarshal(raw, cfg); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if cfg.Listen == "" || cfg.Server == "" || cfg.Domain == "" {
		return nil, fmt.Errorf("%s: listen, server and domain are required", path)
	}
	return cfg, nil
}

func apiClient(cfg *config) (*http.Client, error) {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(cfg.CA)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("%s: no certificate", cfg.CA)
	}
	cert, err := tls.LoadX509KeyPair(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}}, nil
}

// ------------------------------------------------------------------ the records

type objectMeta struct {
	Name            string            `json:"name"`
	Namespace       string            `json:"namespace"`
	ResourceVersion string            `json:"resourceVersion"`
	Labels          map[string]string `json:"labels"`
}

type service struct {
	Metadata objectMeta `json:"metadata"`
	Spec     struct {
		ClusterIP string `json:"clusterIP"`
	} `json:"spec"`
}

type endpointSlice struct {
	Metadata    objectMeta `json:"metadata"`
	AddressType string     `json:"addressType"`
	Endpoints   []struct {
		Addresses  []string `json:"addresses"`
		Conditions struct {
			Ready *bool `json:"ready"`
		} `json:"conditions"`
	} `json:"endpoints"`
}

// index keeps one kind of API object by key, in step with a list-and-watch.
type index[T any] struct {
	mu    *sync.RWMutex
	items map[string]T
	key   func(T) string
}

// set replaces everything with a list's items.
func (ix *index[T]) set(raws []json.RawMessage) {
	fresh := map[string]T{}
	for _, raw := range raws {
		var item T
		if json.Unmarshal(raw, &item) == nil {
			fresh[ix.key(item)] = item
		}
	}
	ix.mu.Lock()
	ix.items = fresh
	ix.mu.Unlock()
}

// apply takes one watch event (ADDED, MODIFIED or DELETED).
func (ix *index[T]) apply(kind string, raw json.RawMessage) {
	var item T
	if json.Unmarshal(raw, &item) != nil {
		return
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if kind == "DELETED" {
		delete(ix.items, ix.key(item))
	} else {
		ix.items[ix.key(item)] = item
	}
}

// store holds what the API said: Services by "name.namespace", and EndpointSlices (for headless
// Services) by "namespace/slice".
type store struct {
	mu       sync.RWMutex
	services index[service]
	slices   index[endpointSlice]
}

func newStore() *store {
	s := &store{}
	s.services = index[service]{mu: &s.mu, items: map[string]service{},
		key: func(svc service) string { return svc.Metadata.Name + "." + svc.Metadata.Namespace }}
	s.slices = index[endpointSlice]{mu: &s.mu, items: map[string]endpointSlice{},
		key: func(es endpointSlice) string { return es.Metadata.Namespace + "/" + es.Metadata.Name }}
	return s
}

// lookup returns the IPv4 addresses of "name.namespace" and whether the Service exists.
func (s *store) lookup(key string) ([]net.IP, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	svc, found := s.services.items[key]
	if !found {
		return nil, false
	}
	clusterIP := svc.Spec.ClusterIP
	if clusterIP != "None" && clusterIP != "" {
		if ip := net.ParseIP(clusterIP).To4(); ip != nil {
			return []net.IP{ip}, true
		}
		return nil, true
	}
	name, namespace, _ := strings.Cut(key, ".")
	var ips []net.IP
	for _, slice := range s.slices.items {
		if slice.Metadata.Namespace != namespace || slice.AddressType != "IPv4" ||
			slice.Metadata.Labels["kubernetes.io/service-name"] != name {
			continue
		}
		for _, endpoint := range slice.Endpoints {
			if endpoint.Conditions.Ready != nil && !*endpoint.Conditions.Ready {
				continue
			}
			for _, address := range endpoint.Addresses {
				if ip := net.ParseIP(address).To4(); ip != nil {
					ips = append(ips, ip)
				}
			}
		}
	}
	return ips, true
}

// listWatch keeps a collection in step with the API: list, then watch from the list's version;
// list again whenever the watch ends or fails.
func listWatch(client *http.Client, url string, set func([]json.RawMessage),
	apply func(string, json.RawMessage)) {
	for {
		version, err := list(client, url, set)
		if err == nil {
			err = watch(client, url, version, apply)
		}
		if err != nil {
			log.Printf("%s: %v (again in 1s)", url, err)
			time.Sleep(time.Second)
		}
	}
}

func list(client *http.Client, url string, set func([]json.RawMessage)) (string, error) {
	response, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return "", fmt.Errorf("list: %s", response.Status)
	}
	var listing struct {
		Metadata objectMeta        `json:"metadata"`
		Items    []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(response.Body).Decode(&listing); err != nil {
		return "", err
	}
	set(listing.Items)
	return listing.Metadata.ResourceVersion, nil
}

func watch(client *http.Client, url, version string, apply func(string, json.RawMessage)) error {
	response, err := client.Get(url + "?watch=1&allowWatchBookmarks=true&timeoutSeconds=600" +
		"&resourceVersion=" + version)
	if err != nil {
		return err
	}
	defer response.Body.Close()
	if response.StatusCode != http.StatusOK {
		return fmt.Errorf("watch: %s", response.Status)
	}
	decoder := json.NewDecoder(response.Body)
	for {
		var event struct {
			Type   string          `json:"type"`
			Object json.RawMessage `json:"object"`
		}
		if err := decoder.Decode(&event); err != nil {
			if errors.Is(err, io.EOF) {
				return nil // the server ended the watch: list again
			}
			return err
		}
		switch event.Type {
		case "ERROR":
			return nil // e.g. 410 Gone: list again
		case "BOOKMARK":
		default:
			apply(event.Type, event.Object)
		}
	}
}

// ------------------------------------------------------------------ the DNS protocol

const (
	typeA    = 1
	classIN  = 1
	rcodeOK  = 0
	rcodeFmt = 1
	rcodeSrv = 2
	rcodeNX  = 3
	rcodeImp = 4
)

type server struct {
	store     *store
	domain    string // ".cluster.local."
	upstreams []string
}

// question is the single question of a query: its name (lower case, with the final dot), type,
// and the raw bytes of the question section (echoed in the answer).
type question struct {
	name  string
	qtype uint16
	raw   []byte
}

func parseQuestion(msg []byte) (question, error) {
	if len(msg) < 12 || binary.BigEndian.Uint16(msg[4:6]) != 1 {
		return question{}, errors.New("not a single-question query")
	}
	var labels []string
	at := 12
	for {
		if at >= len(msg) {
			return question{}, errors.New("truncated name")
		}
		size := int(msg[at])
		if size == 0 {
			at++
			break
		}
		if size&0xC0 != 0 || at+1+size > len(msg) {
			return question{}, errors.New("compressed or truncated name")
		}
		labels = append(labels, strings.ToLower(string(msg[at+1:at+1+size])))
		at += 1 + size
	}
	if at+4 > len(msg) {
		return question{}, errors.New("truncated question")
	}
	name := strings.Join(labels, ".") + "."
	return question{name, binary.BigEndian.Uint16(msg[at : at+2]), msg[12 : at+4]}, nil
}

// answer builds the reply to query; forward reports that the name is not ours.
func (s *server) answer(query []byte) (reply []byte, forward bool) {
	if len(query) < 12 {
		return nil, false
	}
	if opcode := (query[2] >> 3) & 0x0F; opcode != 0 {
		return reply4(query, nil, rcodeImp, nil), false
	}
	q, err := parseQuestion(query)
	if err != nil {
		return reply4(query, nil, rcodeFmt, nil), false
	}
	if !strings.HasSuffix(q.name, s.domain) {
		return nil, true
	}
	parts := strings.Split(strings.TrimSuffix(q.name, s.domain), ".")
	if len(parts) != 3 || parts[2] != "svc" {
		return reply4(query, &q, rcodeNX, nil), false
	}
	ips, found := s.store.lookup(parts[0] + "." + parts[1])
	if !found {
		return reply4(query, &q, rcodeNX, nil), false
	}
	if q.qtype != typeA {
		return reply4(query, &q, rcodeOK, nil), false // the name exists, with no such record
	}
	return reply4(query, &q, rcodeOK, ips), false
}

// reply4 is a reply to query with rcode and A records for ips (authoritative, recursion
// available, the question echoed when known).
func reply4(query []byte, q *question, rcode byte, ips []net.IP) []byte {
	out := make([]byte, 12, 512)
	copy(out[0:2], query[0:2])
	out[2] = 0x80 | (query[2] & 0x78) | 0x04 | (query[2] & 0x01) // QR, opcode, AA, RD
	out[3] = 0x80 | rcode                                        // RA
	if q != nil {
		binary.BigEndian.PutUint16(out[4:6], 1)
		out = append(out, q.raw...)
	}
	binary.BigEndian.PutUint16(out[6:8], uint16(len(ips)))
	for _, ip := range ips {
		out = append(out, 0xC0, 12) // the name: a pointer to the question's
		out = binary.BigEndian.AppendUint16(out, typeA)
		out = binary.BigEndian.AppendUint16(out, classIN)
		out = binary.BigEndian.AppendUint32(out, ttl)
		out = binary.BigEndian.AppendUint16(out, 4)
		out = append(out, ip...)
	}
	return out
}

// forward asks the upstream resolvers in turn, twice round (a lost datagram is asked again after
// a second, as resolvers do); SERVFAIL when none answers.
func (s *server) forward(query []byte) []byte {
	buffer := make([]byte, 65535)
	for round := 0; round < 2; round++ {
		for _, upstream := range s.upstreams {
			if reply := exchange(upstream, query, buffer); reply != nil {
				return reply
			}
		}
	}
	return reply4(query, nil, rcodeSrv, nil)
}

// exchange sends query to upstream and returns its reply (same id), or nil after a second.
func exchange(upstream string, query, buffer []byte) []byte {
	conn, err := net.DialTimeout("udp", upstream, time.Second)
	if err != nil {
		return nil
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(time.Second))
	if _, err := conn.Write(query); err != nil {
		return nil
	}
	for {
		n, err := conn.Read(buffer)
		if err != nil {
			return nil
		}
		if n >= 2 && buffer[0] == query[0] && buffer[1] == query[1] {
			return append([]byte(nil), buffer[:n]...)
		}
	}
}

func (s *server) handle(query []byte) []byte {
	reply, forward := s.answer(query)
	if forward {
		return s.forward(query)
	}
	return reply
}

func (s *server) serveUDP(conn net.PacketConn) {
	for {
		buffer := make([]byte, 4096)
		n, peer, err := conn.ReadFrom(buffer)
		if err != nil {
			log.Fatalf("udp: %v", err)
		}
		go func() {
			if reply := s.handle(buffer[:n]); reply != nil {
				_, _ = conn.WriteTo(reply, peer)
			}
		}()
	}
}

func (s *server) serveTCP(listener net.Listener) {
	for {
		conn, err := listener.Accept()
		if err != nil {
			log.Fatalf("tcp: %v", err)
		}
		go s.serveConn(conn)
	}
}

func (s *server) serveConn(conn net.Conn) {
	defer conn.Close()
	for {
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		var size uint16
		if binary.Read(conn, binary.BigEndian, &size) != nil {
			return
		}
		query := make([]byte, size)
		if _, err := io.ReadFull(conn, query); err != nil {
			return
		}
		reply := s.handle(query)
		if reply == nil {
			return
		}
		framed := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
		if _, err := conn.Write(append(framed, reply...)); err != nil {
			return
		}
	}
}
