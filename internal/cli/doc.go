// Package cli is the `ferry` command line: a cobra command tree whose commands
// parse flags, call into the internal packages that do the work, and print
// results as tables or as -o json|yaml. It holds no business logic of its own.
package cli
