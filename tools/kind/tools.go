//go:build tools

// Package tools pins kind (the kind provider's cluster tool) to this module.
package tools

import _ "sigs.k8s.io/kind"
