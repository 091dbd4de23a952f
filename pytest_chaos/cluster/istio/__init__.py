"""A real Istio control plane (istiod) and data plane (Envoy via pilot-agent) on the host.

Pure pieces first: the mesh and proxy configuration, the command lines and environments of
istiod and the gateway proxy. The processes are started by the local cluster's provider.
"""
