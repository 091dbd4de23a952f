// pytest-chaos-network-policies: the NetworkPolicy enforcer of one netns real node of the
// embedded local cluster. It runs sigs.k8s.io/kube-network-policies' controller (nftables +
// NFQUEUE: the first packet of every new connection of a pod a policy selects is judged in user
// space; established connections are left alone) with what the upstream command cannot take:
//
//   - a kubeconfig (the upstream command only reads the in-cluster service account files, which
//     are not there on a node that is a network namespace of the host);
//   - NRI off (its socket is a host path, /var/run/nri/nri.sock, shared by every node);
//   - SIGTERM like SIGINT: the controller deletes its nftables table before the process exits.
//
// With --remove-table it only removes the table of the namespace it runs in (left by an enforcer
// that was killed) and prints "removed" or "absent".
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/google/nftables"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
	"sigs.k8s.io/kube-network-policies/pkg/networkpolicy"
)

func main() {
	kubeconfig := flag.String("kubeconfig", "", "the kubeconfig of the node (required)")
	node := flag.String("hostname-override", "", "the name of the node (required)")
	queue := flag.Int("nfqueue-id", 100, "the NFQUEUE number of the node's namespace")
	table := flag.String("nftables-table", "kube-network-policies", "the inet table to use")
	removeTable := flag.Bool("remove-table", false, "remove the table, print removed or absent")
	klog.InitFlags(nil)
	flag.Parse()
	if *removeTable {
		os.Exit(remove(*table))
	}
	if *kubeconfig == "" || *node == "" {
		fmt.Fprintln(os.Stderr, "--kubeconfig and --hostname-override are required")
		os.Exit(2)
	}
	os.Exit(run(*kubeconfig, networkpolicy.Config{
		QueueID:             *queue,
		NodeName:            *node,
		NFTableName:         *table,
		NetfilterBug1766Fix: true,
		NRIdisabled:         true,
	}))
}

func run(kubeconfig string, config networkpolicy.Config) int {
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
	case err = <-done: // it failed to start (no nftables, no NFQUEUE...)
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
	klog.Info("stopped; nftables table removed")
	return 0
}

// remove deletes the inet table name of this network namespace, if there is one.
func remove(name string) int {
	conn, err := nftables.New()
	if err != nil {
		fmt.Fprintf(os.Stderr, "nftables: %v\n", err)
		return 1
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		fmt.Fprintf(os.Stderr, "listing the inet tables: %v\n", err)
		return 1
	}
	for _, table := range tables {
		if table.Name != name {
			continue
		}
		conn.DelTable(table)
		if err := conn.Flush(); err != nil {
			fmt.Fprintf(os.Stderr, "removing table inet %s: %v\n", name, err)
			return 1
		}
		fmt.Println("removed")
		return 0
	}
	fmt.Println("absent")
	return 0
}
