// Package tools pins the linters scripts/test.sh runs, in a module of their
// own so their dependencies stay out of the main go.sum.
package tools
