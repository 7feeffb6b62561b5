// Package claims is the authoritative record of which Ferry Service holds
// which egress port: ConfigMaps in the system namespace, one per shard of
// contract.PortClaimsShard ports, that only the controller writes.
//
// Labels can be written by anyone who may create a Service, so the Services
// themselves cannot say which of them are Ferry's: a tenant's copy of a
// mirror's labels once held ports that later mirrors were given, and their
// clients were tunnelled to the tenant's target (docs/security.md,
// finding 1). The record closes that. The allocator takes its memory from
// the claims (a forged Service holds nothing), the gateway routes a port
// only to the Service its claim names (a forged Service routes nothing), and
// a claim is released only once the object that held the port is gone.
//
// A port lives in exactly one shard, so every write of a claim is guarded by
// that shard's resourceVersion: two writers that want one port (two Links,
// or two controller replicas that briefly both believe they lead) cannot
// both get it; one of them conflicts, reads again and chooses another.
package claims
