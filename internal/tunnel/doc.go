// Package tunnel is Ferry's gateway-to-gateway transport.
//
// One TLS 1.3 listener with mutual authentication carries everything a
// cluster exposes. ALPN picks the protocol per connection: "ferry-tunnel/1"
// is a yamux session that multiplexes tunnel streams (go-yamux, Ferry's copy
// in third_party: stream windows grow with the path, reserved from the
// budget as they grow), and "h2" connections
// are handed, already verified, to a ConnListener for the export feed's gRPC
// server. Each stream starts with a length-prefixed header naming its
// target (namespace, service, port, and for one pod of a headless Service
// its hostname) and a one-byte reply, then carries raw bytes with
// half-close preserved in both directions.
//
// Server is the ingress side: handshake timeout and fair admission to the
// handshake (admission.go), connection, session and stream limits, stream
// memory per caller and in total (budget.go), peer policy by ALPN, drain.
// Live connections on both sides are re-verified when the trust bundle
// changes, end with the peer's certificate, and are retired at a maximum
// age and when this side's certificate is renewed (lifetime.go; Guard does the same for the feed client). Client is the egress side: a
// small pool of long-lived sessions per remote cluster, verified against the
// identity the Link names, kept alive with pings and redialed with backoff.
// Splice relays bytes between two connections with an idle timeout.
//
// The package imports nothing from Kubernetes. Authorization of a target
// and the choice of a backend belong to package gateway, which implements
// StreamHandler.
package tunnel
