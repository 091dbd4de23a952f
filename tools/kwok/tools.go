//go:build tools

// Package tools pins the kwok controller built for the local cluster.
package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
