//go:build tools

// Keeps lnd and its command-line packages in go.mod/go.sum; the binaries are built by package path.
package tools

import (
	_ "github.com/lightningnetwork/lnd"
	_ "github.com/lightningnetwork/lnd/cmd/commands"
)
