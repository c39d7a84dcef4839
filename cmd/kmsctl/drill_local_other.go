//go:build !linux

package main

import "io"

// newLocalActions needs /proc to find the nodes and their command lines.
func newLocalActions(dir, region string, log io.Writer) (drillActions, error) {
	return nil, usagef("--local works on Linux only; elsewhere leave it out and cut the region off by hand when the drill asks")
}
