//go:build tools

// Package tools pins istiod (pilot-discovery) and pilot-agent, built from Istio's own module.
package tools

import (
	_ "istio.io/istio/pilot/cmd/pilot-agent"
	_ "istio.io/istio/pilot/cmd/pilot-discovery"
)
