//go:build tools

// Package tools pins crane (push, pull and list images of the local registry) to this module.
package tools

import _ "github.com/google/go-containerregistry/cmd/crane"
