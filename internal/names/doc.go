// Package names holds the names Ferry writes into clusters: the mirror Service
// name for a remote export, and the label and annotation keys that mark what
// Ferry owns. Keeping them in one place keeps the controller, the gateway and
// the CLI agreeing on them.
package names
