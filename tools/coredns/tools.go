//go:build tools

// Package tools pins CoreDNS, which the kind node image runs as the cluster DNS.
package tools

import _ "github.com/coredns/coredns"
