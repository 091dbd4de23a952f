//go:build tools

// Package tools pins the Istio API module whose CRD schemas the local cluster installs.
package tools

import _ "istio.io/api/networking/v1"
