// Package steering decides how a clusterset service's new connections are
// split over its clusters: the policy a user writes (a Gateway API route's
// backend weights, and a ServiceImport's affinity), checked and resolved
// into one Policy per service, and that Policy applied to what each cluster
// can serve right now (its ready endpoints) as a weight and a tier per
// cluster.
//
// The controller resolves (Resolve), writes the route statuses, and records
// each service's Policy on its clusterset Service (contract.AnnotationSteering,
// Policy.String). The gateway reads it back (ParsePolicy) and applies it
// (Apply) with the ready-endpoint counts it already reads, so a cluster
// whose endpoints go to zero stops taking connections without waiting for
// the controller. `ferry traffic` applies it the same way to show it.
//
// Everything here is pure: no I/O, the same input gives the same output.
// docs/steering.md describes the policy as users write it.
package steering
