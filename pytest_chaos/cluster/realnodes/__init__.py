"""Real nodes, many: each node of a local cluster in its own network namespace.

``plan`` decides names and addresses (pure), ``host`` makes the host-side changes (bridge,
routes, sysctls, firewall rules), ``network`` the per-node namespaces and veths, ``cgroups`` a
cgroup parent per node, ``node`` runs one node's containerd, kubelet and kube-proxy inside its
namespace, and ``cluster`` composes them. Every host change is recorded before it is made.
"""
