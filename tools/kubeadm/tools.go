//go:build tools

// Package tools pins kubeadm, which the kind node image needs.
package tools

import _ "k8s.io/kubernetes/cmd/kubeadm"
