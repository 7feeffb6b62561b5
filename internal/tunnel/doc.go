// Package tunnel is Ferry's gateway-to-gateway transport.
//
// One TLS 1.3 listener with mutual authentication carries everything a
// cluster exposes. ALPN picks the protocol per connection: "ferry-tunnel/1"
// is a yamux session that multiplexes tunnel streams, and "h2" connections
// are handed, already verified, to a ConnListener for the export feed's gRPC
// server. Each stream starts with a length-prefixed header naming its
// target (namespace, service, port) and a one-byte reply, then carries raw
// bytes with half-close preserved in both directions.
//
// Server is the ingress side: handshake timeout, connection, session and
// stream limits, peer policy by ALPN, drain. Client is the egress side: a
// small pool of long-lived sessions per remote cluster, verified against the
// identity the Link names, kept alive with pings and redialed with backoff.
// Splice relays bytes between two connections with an idle timeout.
//
// The package imports nothing from Kubernetes. Authorization of a target
// and the choice of a backend belong to package gateway, which implements
// StreamHandler.
package tunnel
