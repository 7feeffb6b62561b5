// Package contract is the one place for what Ferry's parts agree on without
// talking to each other: the controller writes objects that the gateway
// reads, the CLI renders flags that the daemons parse, and a Link names an
// identity that both the importer and the gateway verify. Here are:
//
//   - the names of an install's objects and Secrets, and its ports;
//   - the egress port ranges (Range) and the ports no range may hold;
//   - the label and annotation keys that mark what Ferry owns, and the
//     mirror and clusterset Service names;
//   - the rule for a cluster's name (ValidateClusterName) and for the
//     gateway identity a Link may name (LinkGatewayID), with the daemons'
//     identities.
//
// It imports nothing from Kubernetes, so the gateway core may use it.
// docs/contracts.md describes the same contract in prose.
package contract
