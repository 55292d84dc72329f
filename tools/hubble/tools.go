//go:build tools

// Package tools pins the real hubble CLI and hubble-relay that flowtape's
// compatibility tests run against. They are built from this separate module so
// that flowtape's own go.mod does not carry Cilium's full dependency tree.
package tools

import (
	_ "github.com/cilium/cilium/hubble"
	_ "github.com/cilium/cilium/hubble-relay"
)
