// Package clusterset writes the clusterset objects of every imported
// service (docs/contracts.md, "Clusterset services"): for each (namespace,
// exported service) that at least one mirror stands for, the MCS
// ServiceImport <svc>, the clusterset Service <svc>-clusterset that carries
// its IP, and that Service's EndpointSlices (the local gateway pods on
// egress ports from the clusterset range).
//
// Desired is pure and computes the whole desired state from the mirrors;
// Diff compares it with the objects that carry contract.LabelClusterset; the
// Reconciler (leader-only, level-based, one work item for the cluster)
// reads the cache, writes only the differences and never touches an object
// without the label.
package clusterset
