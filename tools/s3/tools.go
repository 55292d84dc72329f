//go:build tools

// Package tools pins the real S3-compatible server (versitygw with its POSIX
// backend) that flowtape's object-storage tests record into and read from. It
// is built from this separate module so that flowtape's own go.mod does not
// carry the gateway's dependencies.
package tools

import (
	_ "github.com/versity/versitygw/cmd/versitygw"
)
