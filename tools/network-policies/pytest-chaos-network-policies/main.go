// pytest-chaos-network-policies: the NetworkPolicy enforcer of one netns real node of the
// embedded local cluster. It runs sigs.k8s.io/kube-network-policies' controller (the first packet
// of every new connection of a pod is judged in user space through NFQUEUE; established
// connections are left alone) with what the upstream command cannot take:
//
//   - a kubeconfig (the upstream command only reads the in-cluster service account files, which
//     are not there on a node that is a network namespace of the host);
//   - NRI unreachable (its socket is a host path, /var/run/nri/nri.sock, shared by every node):
//     v0.8.0 looks pod IPs up through its NRI plugin even with NRIdisabled (a nil pointer then,
//     on the first packet of an address the API does not know), so the plugin is made but given
//     a connection that is not a socket (NRI_PLUGIN_SOCKET=/dev/null's descriptor): it fails at
//     once and the pods' IPs come from the API server only;
//   - SIGTERM like SIGINT: the controller deletes its nftables table before the process exits;
//   - kernels without nftables' queue expression (CONFIG_NFT_QUEUE unset, no module to load):
//     the controller's table cannot be made there, so new connections from and to the node's
//     pod range (--pod-cidr) are sent to the same queue by an iptables chain in table mangle (the
//     xtables NFQUEUE target) instead, removed again on exit.
//
// --check-rules prints "present" or "absent" (the table or the chain) and "bound" or "unbound"
// (whether a process listens on the queue); --remove-rules removes both, left by an enforcer
// that was killed, and prints "removed" or "absent". Both act on the namespace they run in.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

// chain is the iptables chain of the fallback: table mangle, jumped to first from POSTROUTING
// (like the controller's own nftables chain: after routing, before source NAT, so it sees
// forwarded and local packets alike, whatever kube-proxy's filter rules accept).
const chain = "PYTEST-CHAOS-NETPOL"

func main() {
	kubeconfig := flag.String("kubeconfig", "", "the kubeconfig of the node (required)")
	node := flag.String("hostname-override", "", "the name of the node (required)")
	queue := flag.Int("nfqueue-id", 100, "the NFQUEUE number of the node's namespace")
	table := flag.String("nftables-table", "kube-network-policies", "the inet table to use")
	podCIDR := flag.String("pod-cidr", "", "the node's pod range (for the iptables fallback)")
	check := flag.Bool("check-rules", false, "print present|absent and bound|unbound")
	remove := flag.Bool("remove-rules", false, "remove the table and chain, print removed|absent")
	klog.InitFlags(nil)
	flag.Parse()
	if *check {
		os.Exit(report(*table, *queue))
	}
	if *remove {
		os.Exit(removeAll(*table))
	}
	if *kubeconfig == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig and --hostname-override are required")
		os.Exit(2)
	}
	os.Exit(run(*kubeconfig, *podCIDR, networkpolicy.Config{
		QueueID:             *queue,
		NodeName:            *node,
		NFTableName:         *table,
		NetfilterBug1766Fix: true,
	}))
}

func run(kubeconfig, podCIDR string, config networkpolicy.Config) int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	rest, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		klog.Errorf("reading %s: %v", kubeconfig, err)
		return 1
	}
	client, err := kubernetes.NewForConfig(rest)
	if err != nil {
		klog.Errorf("making the API client: %v", err)
		return 1
	}
	if !queueExpression() {
		if podCIDR == "" {
			klog.Errorf("nftables has no queue expression here and --pod-cidr is not set")
			return 2
		}
		klog.Infof("nftables has no queue expression (CONFIG_NFT_QUEUE): iptables chain %s "+
			"queues the new connections of %s (the controller's nftables sync fails and is retried)",
			chain, podCIDR)
		if err := addChain(podCIDR, config.QueueID); err != nil {
			klog.Errorf("adding the iptables chain: %v", err)
			_, _ = removeChain()
			return 1
		}
		defer func() {
			if _, err := removeChain(); err != nil {
				klog.Errorf("removing the iptables chain: %v", err)
			}
		}()
	}
	devNull, err := os.Open(os.DevNull) // kept open: the NRI stub's "socket" (see above)
	if err != nil {
		klog.Errorf("opening %s: %v", os.DevNull, err)
		return 1
	}
	defer devNull.Close()
	os.Setenv("NRI_PLUGIN_SOCKET", strconv.Itoa(int(devNull.Fd())))
	factory := informers.NewSharedInformerFactory(client, 0)
	controller, err := networkpolicy.NewController(
		client,
		factory.Networking().V1().NetworkPolicies(),
		factory.Core().V1().Namespaces(),
		factory.Core().V1().Pods(),
		nil, nil, nil, nil, // no (Baseline)AdminNetworkPolicy
		config,
	)
	if err != nil {
		klog.Errorf("making the controller: %v", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- controller.Run(ctx) }()
	factory.Start(ctx.Done())
	select {
	case err = <-done: // it failed to start (no NFQUEUE...)
		klog.Errorf("the controller stopped: %v", err)
		return 1
	case <-ctx.Done():
	}
	select { // Run returns once its nftables table is deleted
	case <-done:
	case <-time.After(10 * time.Second):
		klog.Errorf("the controller did not stop within 10s")
		return 1
	}
	klog.Info("stopped; rules removed")
	return 0
}

// queueExpression tells whether nftables can queue here: it adds a scratch table with a queue
// rule in one batch (all or nothing) and deletes it again.
func queueExpression() bool {
	conn, err := nftables.New()
	if err != nil {
		return false
	}
	table := conn.AddTable(&nftables.Table{Name: "pytest-chaos-probe", Family: nftables.TableFamilyINet})
	probe := conn.AddChain(&nftables.Chain{Name: "probe", Table: table})
	conn.AddRule(&nftables.Rule{
		Table: table,
		Chain: probe,
		Exprs: []expr.Any{&expr.Queue{Num: 0, Flag: expr.QueueFlagBypass}},
	})
	if err := conn.Flush(); err != nil {
		return false
	}
	conn.DelTable(table)
	_ = conn.Flush()
	return true
}

func iptables(args ...string) error {
	out, err := exec.Command("iptables", append([]string{"-w", "5", "-t", "mangle"}, args...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("iptables %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// addChain queues every packet of a connection that is not established yet, from or to cidr;
// like the controller's own rules it lets DNS over UDP and the node's root processes (the
// kubelet's probes) pass. With --queue-bypass the packets pass while no process listens on the
// queue.
func addChain(cidr string, queue int) error {
	target := []string{"-j", "NFQUEUE", "--queue-num", strconv.Itoa(queue), "--queue-bypass"}
	steps := [][]string{
		{"-N", chain},
		{"-A", chain, "-p", "udp", "--dport", "53", "-j", "RETURN"},
		{"-A", chain, "-m", "owner", "--uid-owner", "0", "-j", "RETURN"},
		{"-A", chain, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		append([]string{"-A", chain, "-s", cidr}, target...),
		append([]string{"-A", chain, "-d", cidr}, target...),
		{"-I", "POSTROUTING", "1", "-j", chain},
	}
	for _, step := range steps {
		if err := iptables(step...); err != nil {
			return err
		}
	}
	return nil
}

func chainPresent() bool {
	return iptables("-n", "-L", chain) == nil
}

// removeChain deletes the fallback chain and its jump; false when there was none.
func removeChain() (bool, error) {
	if !chainPresent() {
		return false, nil
	}
	for iptables("-D", "POSTROUTING", "-j", chain) == nil {
	}
	if err := iptables("-F", chain); err != nil {
		return true, err
	}
	return true, iptables("-X", chain)
}

// findTable returns the inet table name of this namespace, or nil.
func findTable(conn *nftables.Conn, name string) (*nftables.Table, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return nil, fmt.Errorf("listing the inet tables: %v", err)
	}
	for _, table := range tables {
		if table.Name == name {
			return table, nil
		}
	}
	return nil, nil
}

// bound tells whether a process listens on queue (/proc/net is this namespace's).
func bound(queue int) bool {
	file, err := os.Open("/proc/net/netfilter/nfnetlink_queue")
	if err != nil {
		return false
	}
	defer file.Close()
	lines := bufio.NewScanner(file)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) > 0 && fields[0] == strconv.Itoa(queue) {
			return true
		}
	}
	return false
}

func report(name string, queue int) int {
	conn, err := nftables.New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nftables: %v\n", err)
		return 1
	}
	table, err := findTable(conn, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	state, listening := "absent", "unbound"
	if table != nil || chainPresent() {
		state = "present"
	}
	if bound(queue) {
		listening = "bound"
	}
	fmt.Println(state, listening)
	return 0
}

func removeAll(name string) int {
	conn, err := nftables.New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nftables: %v\n", err)
		return 1
	}
	table, err := findTable(conn, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if table != nil {
		conn.DelTable(table)
		if err := conn.Flush(); err != nil {
			fmt.Fprintf(os.Stderr, "removing table inet %s: %v\n", name, err)
			return 1
		}
	}
	chained, err := removeChain()
	if err != nil {
		fmt.Fprintf(os.Stderr, "removing iptables chain %s: %v\n", chain, err)
		return 1
	}
	if table != nil || chained {
		fmt.Println("removed")
	} else {
		fmt.Println("absent")
	}
	return 0
}
