// Command pytest-chaos-delay delays a pod's outgoing packets where the kernel has no netem.
//
// chaos.network.latency uses tc netem when the node's kernel has sch_netem. Where it has not, the
// fault's iptables chain sends every packet the pod sends (but loopback's) to an NFQUEUE, and
// this program, running in an ephemeral container in the pod's network namespace, holds each
// one for the delay and then accepts it:
//
//	pytest-chaos-delay serve -tag TAG -queue N -delay 300ms [-jitter 20ms]
//	pytest-chaos-delay ready -tag TAG [-within 20s]
//	pytest-chaos-delay stop  -tag TAG [-within 20s]
//
// serve binds queue N (nfnetlink_queue, metadata only: no payload is copied), and answers on
// the abstract unix socket "@pytest-chaos-delay-TAG". Abstract sockets belong to the network
// namespace, so the pod's other ephemeral containers reach it: "ready" asks whether it is bound
// and serving (the fault waits for that before it returns) and "stop" ends it (the fault's undo,
// after it has removed the iptables rules). On stop, SIGTERM or SIGINT it accepts every packet
// it still holds, unbinds the queue and exits 0 with a one-line report in the container's
// termination message.
//
// Each packet's delay is the delay plus a uniform random jitter in [-jitter, +jitter] (never
// below 0); packets keep their order: one never leaves before a packet queued before it. The
// rules use --queue-bypass and the queue fails open when full, so if this program is not
// running, or falls behind, packets pass undelayed rather than being dropped.
//
// A bind that fails (no nfnetlink_queue in the kernel, no CAP_NET_ADMIN) prints a line starting
// with LATENCY-UNAVAILABLE and exits 3. Standard library only.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	netlinkNetfilter = 12 // NETLINK_NETFILTER
	subsysQueue      = 3  // NFNL_SUBSYS_QUEUE
	msgPacket        = 0  // NFQNL_MSG_PACKET
	msgConfig        = 2  // NFQNL_MSG_CONFIG
	msgVerdictBatch  = 3  // NFQNL_MSG_VERDICT_BATCH

	cfgCmd       = 1 // NFQA_CFG_CMD
	cfgParams    = 2 // NFQA_CFG_PARAMS
	cfgMaxLen    = 3 // NFQA_CFG_QUEUE_MAXLEN
	cfgMask      = 4 // NFQA_CFG_MASK
	cfgFlags     = 5 // NFQA_CFG_FLAGS
	cmdBind      = 1 // NFQNL_CFG_CMD_BIND
	cmdUnbind    = 2 // NFQNL_CFG_CMD_UNBIND
	copyMeta     = 1 // NFQNL_COPY_META
	flagFailOpen = 1 << 0
	flagGSO      = 1 << 2

	attrPacketHdr  = 1 // NFQA_PACKET_HDR
	attrVerdictHdr = 2 // NFQA_VERDICT_HDR
	nfAccept       = 1

	solNetlink      = 270 // SOL_NETLINK
	netlinkNoENOBUF = 5   // NETLINK_NO_ENOBUFS

	queueMaxLen = 16384
	unavailable = 3
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	flags := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	tag := flags.String("tag", "", "the fault's tag (names the control socket)")
	queue := flags.Uint("queue", 0, "the NFQUEUE number the fault's rules send packets to")
	delay := flags.Duration("delay", 0, "how long each packet is held")
	jitter := flags.Duration("jitter", 0, "random variation of the delay, +-")
	within := flags.Duration("within", 20*time.Second, "how long ready/stop wait for the delayer")
	_ = flags.Parse(os.Args[2:])
	if *tag == "" {
		usage()
	}
	switch os.Args[1] {
	case "serve":
		if *delay <= 0 || *jitter < 0 || *queue > 65535 {
			fail("serve needs -delay > 0, -jitter >= 0 and -queue 0..65535")
		}
		serve(*tag, uint16(*queue), *delay, *jitter)
	case "ready":
		answer, err := ask(*tag, "status", *within, false)
		if err != nil {
			fail(fmt.Sprintf("the delayer %s is not ready: %v", *tag, err))
		}
		fmt.Println(answer)
	case "stop":
		answer, err := ask(*tag, "stop", *within, true)
		if err != nil {
			fail(fmt.Sprintf("cannot stop the delayer %s: %v", *tag, err))
		}
		fmt.Println(answer)
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: pytest-chaos-delay serve|ready|stop -tag TAG [-queue N -delay D -jitter J] [-within D]")
	os.Exit(2)
}

func report(line string) {
	fmt.Println("pytest-chaos: " + line)
	path := os.Getenv("PYTEST_CHAOS_REPORT")
	if path == "" {
		path = "/dev/termination-log"
	}
	_ = os.WriteFile(path, []byte(line+"\n"), 0o644)
}

func fail(message string) {
	fmt.Fprintln(os.Stderr, "pytest-chaos: "+message)
	os.Exit(1)
}

func socketName(tag string) string { return "@pytest-chaos-delay-" + tag }

// --- the control client -------------------------------------------------------------------

// ask sends one command to the delayer and returns its one-line answer. Until within has passed
// it retries a delayer that does not listen yet; with absentOK, a delayer that does not listen
// at all (never started, or already stopped) is an answer too.
func ask(tag, command string, within time.Duration, absentOK bool) (string, error) {
	deadline := time.Now().Add(within)
	for {
		conn, err := net.DialTimeout("unix", socketName(tag), time.Until(deadline))
		if err == nil {
			defer conn.Close()
			_ = conn.SetDeadline(deadline)
			if _, err := fmt.Fprintln(conn, command); err != nil {
				return "", err
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil {
				return "", fmt.Errorf("no answer to %q: %w", command, err)
			}
			if command == "stop" {
				// The delayer closes the socket when it has unbound the queue and exits.
				_, _ = bufio.NewReader(conn).ReadString('\n')
			}
			return strings.TrimSpace(line), nil
		}
		if absentOK && errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Sprintf("delayer %s was not running", tag), nil
		}
		if time.Now().After(deadline) {
			return "", err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// --- the delayer --------------------------------------------------------------------------

type held struct {
	id      uint32
	release time.Time
}

type delayer struct {
	fd      int
	queue   uint16
	delay   time.Duration
	jitter  time.Duration
	pending chan held
	mu      sync.Mutex // serialises writes to the netlink socket
	newest  atomic.Uint32
	seen    atomic.Uint64
	seq     uint32
}

func serve(tag string, queue uint16, delay, jitter time.Duration) {
	d, err := bind(queue, delay, jitter)
	if err != nil {
		report(fmt.Sprintf("LATENCY-UNAVAILABLE: cannot bind NFQUEUE %d: %v", queue, err))
		os.Exit(unavailable)
	}
	listener, err := net.Listen("unix", socketName(tag))
	if err != nil {
		d.unbind()
		fail(fmt.Sprintf("cannot listen on %s: %v", socketName(tag), err))
	}
	fmt.Printf("pytest-chaos: delaying queue %d by %s +- %s\n", queue, delay, jitter)
	go d.receive()
	go d.release()

	stop := make(chan net.Conn, 1)
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			go d.control(conn, stop)
		}
	}()
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	var asker net.Conn
	select {
	case asker = <-stop:
	case <-signals:
	}
	listener.Close()
	d.acceptAll()
	d.unbind()
	summary := fmt.Sprintf("latency nfqueue %d stopped: %d packets delayed by %s +- %s",
		queue, d.seen.Load(), delay, jitter)
	// The report first: the undo writes its own report to the same file once stop returns,
	// and stop returns when the asker's connection closes.
	report(summary)
	if asker != nil {
		fmt.Fprintln(asker, summary)
		asker.Close()
	}
	os.Exit(0)
}

func (d *delayer) control(conn net.Conn, stop chan<- net.Conn) {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		conn.Close()
		return
	}
	switch strings.TrimSpace(line) {
	case "status":
		fmt.Fprintf(conn, "latency nfqueue %d ready: delay %s +- %s, %d packets so far\n",
			d.queue, d.delay, d.jitter, d.seen.Load())
		conn.Close()
	case "stop":
		_ = conn.SetDeadline(time.Time{})
		select {
		case stop <- conn:
		default:
			conn.Close()
		}
	default:
		fmt.Fprintln(conn, "unknown command")
		conn.Close()
	}
}

// receive reads the queued packets' ids and hands them to release with their release time.
func (d *delayer) receive() {
	buffer := make([]byte, 1<<16)
	var previous time.Time
	for {
		n, _, err := syscall.Recvfrom(d.fd, buffer, 0)
		if err != nil {
			if errors.Is(err, syscall.EINTR) || errors.Is(err, syscall.ENOBUFS) {
				continue
			}
			if errors.Is(err, syscall.EBADF) {
				return
			}
			fmt.Fprintf(os.Stderr, "pytest-chaos: netlink receive: %v\n", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		now := time.Now()
		for _, id := range packetIDs(buffer[:n]) {
			release := releaseTime(now, previous, d.delay, d.jitter, rand.Int63n)
			previous = release
			d.newest.Store(id)
			d.seen.Add(1)
			d.pending <- held{id, release}
		}
	}
}

// releaseTime is when a packet queued at now may go: after delay +- a uniform jitter (never
// below 0), and never before the packet queued before it (released at previous).
func releaseTime(now, previous time.Time, delay, jitter time.Duration, random func(int64) int64) time.Time {
	wait := delay
	if jitter > 0 {
		wait += time.Duration(random(int64(2*jitter)+1)) - jitter
		if wait < 0 {
			wait = 0
		}
	}
	release := now.Add(wait)
	if release.Before(previous) {
		return previous
	}
	return release
}

// release accepts the packets in order, each at its release time; the packets due together
// go in one batch verdict (every id up to the newest due one).
func (d *delayer) release() {
	for next := range d.pending {
		if wait := time.Until(next.release); wait > 0 {
			time.Sleep(wait)
		}
		last := next.id
	drain:
		for {
			select {
			case more := <-d.pending:
				if time.Until(more.release) > 0 {
					d.verdict(last)
					if wait := time.Until(more.release); wait > 0 {
						time.Sleep(wait)
					}
				}
				last = more.id
			default:
				break drain
			}
		}
		d.verdict(last)
	}
}

func (d *delayer) verdict(id uint32) {
	value := make([]byte, 8)
	binary.BigEndian.PutUint32(value[0:4], nfAccept)
	binary.BigEndian.PutUint32(value[4:8], id)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.send(msgVerdictBatch, false, attr(attrVerdictHdr, value)); err != nil {
		fmt.Fprintf(os.Stderr, "pytest-chaos: verdict for packet %d: %v\n", id, err)
	}
}

// acceptAll lets every packet still held go at once: one batch verdict for every id up to the
// newest one received.
func (d *delayer) acceptAll() {
	if d.seen.Load() > 0 {
		d.verdict(d.newest.Load())
	}
}

func (d *delayer) unbind() {
	d.mu.Lock()
	defer d.mu.Unlock()
	_ = d.send(msgConfig, true, attr(cfgCmd, []byte{cmdUnbind, 0, 0, 0}))
	syscall.Close(d.fd)
}

// --- nfnetlink_queue ----------------------------------------------------------------------

func bind(queue uint16, delay, jitter time.Duration) (*delayer, error) {
	fd, err := syscall.Socket(syscall.AF_NETLINK, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, netlinkNetfilter)
	if err != nil {
		return nil, fmt.Errorf("netlink socket: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK}); err != nil {
		syscall.Close(fd)
		return nil, fmt.Errorf("netlink bind: %w", err)
	}
	// Room for a burst of queued packets' metadata; never fail a read with ENOBUFS.
	_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 8<<20)
	_ = syscall.SetsockoptInt(fd, solNetlink, netlinkNoENOBUF, 1)
	d := &delayer{fd: fd, queue: queue, delay: delay, jitter: jitter, pending: make(chan held, queueMaxLen)}
	params := make([]byte, 5)
	binary.BigEndian.PutUint32(params[0:4], 0) // copy range: no payload
	params[4] = copyMeta
	maxLen := make([]byte, 4)
	binary.BigEndian.PutUint32(maxLen, queueMaxLen)
	flags := make([]byte, 4)
	binary.BigEndian.PutUint32(flags, flagFailOpen|flagGSO)
	steps := [][]byte{
		attr(cfgCmd, []byte{cmdBind, 0, 0, 0}),
		append(attr(cfgParams, params), attr(cfgMaxLen, maxLen)...),
		append(attr(cfgFlags, flags), attr(cfgMask, flags)...),
	}
	for _, step := range steps {
		if err := d.send(msgConfig, true, step); err != nil {
			syscall.Close(fd)
			return nil, err
		}
		if err := d.ack(); err != nil {
			syscall.Close(fd)
			return nil, err
		}
	}
	return d, nil
}

// send writes one nfnetlink message: header, nfgenmsg (queue number), attributes.
func (d *delayer) send(kind uint16, wantAck bool, attrs []byte) error {
	d.seq++
	length := 16 + 4 + len(attrs)
	message := make([]byte, length)
	binary.NativeEndian.PutUint32(message[0:4], uint32(length))
	binary.NativeEndian.PutUint16(message[4:6], subsysQueue<<8|kind)
	flags := uint16(syscall.NLM_F_REQUEST)
	if wantAck {
		flags |= syscall.NLM_F_ACK
	}
	binary.NativeEndian.PutUint16(message[6:8], flags)
	binary.NativeEndian.PutUint32(message[8:12], d.seq)
	message[16] = syscall.AF_UNSPEC
	message[17] = 0 // NFNETLINK_V0
	binary.BigEndian.PutUint16(message[18:20], d.queue)
	copy(message[20:], attrs)
	return syscall.Sendto(d.fd, message, 0, &syscall.SockaddrNetlink{Family: syscall.AF_NETLINK})
}

// ack reads the kernel's answer to a config message: an error code, 0 for success.
func (d *delayer) ack() error {
	buffer := make([]byte, 8192)
	for {
		n, _, err := syscall.Recvfrom(d.fd, buffer, 0)
		if err != nil {
			return fmt.Errorf("netlink ack: %w", err)
		}
		for data := buffer[:n]; len(data) >= 16; {
			length := int(binary.NativeEndian.Uint32(data[0:4]))
			if length < 16 || length > len(data) {
				break
			}
			if binary.NativeEndian.Uint16(data[4:6]) == syscall.NLMSG_ERROR && length >= 20 {
				code := int32(binary.NativeEndian.Uint32(data[16:20]))
				if code == 0 {
					return nil
				}
				return syscall.Errno(-code)
			}
			data = data[align(length):]
		}
	}
}

// packetIDs parses the NFQNL_MSG_PACKET messages of one datagram: their packet ids.
func packetIDs(data []byte) []uint32 {
	var ids []uint32
	for len(data) >= 16 {
		length := int(binary.NativeEndian.Uint32(data[0:4]))
		if length < 16 || length > len(data) {
			break
		}
		kind := binary.NativeEndian.Uint16(data[4:6])
		if kind == subsysQueue<<8|msgPacket && length >= 20 {
			for attrs := data[20:length]; len(attrs) >= 4; {
				size := int(binary.NativeEndian.Uint16(attrs[0:2]))
				if size < 4 || size > len(attrs) {
					break
				}
				if binary.NativeEndian.Uint16(attrs[2:4])&0x3fff == attrPacketHdr && size >= 8 {
					ids = append(ids, binary.BigEndian.Uint32(attrs[4:8]))
				}
				attrs = attrs[min(align(size), len(attrs)):]
			}
		}
		data = data[min(align(length), len(data)):]
	}
	return ids
}

func attr(kind uint16, value []byte) []byte {
	size := 4 + len(value)
	out := make([]byte, align(size))
	binary.NativeEndian.PutUint16(out[0:2], uint16(size))
	binary.NativeEndian.PutUint16(out[2:4], kind)
	copy(out[4:], value)
	return out
}

func align(n int) int { return (n + 3) &^ 3 }
