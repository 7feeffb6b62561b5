// Package testkit holds the helpers every test package shares: waiting for a
// condition, and a logger that is quiet unless asked. It imports nothing
// from Kubernetes, so the tests of the Kubernetes-free gateway core use it
// too; testenv, which starts clusters, builds on it.
package testkit
