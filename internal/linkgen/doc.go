// Package linkgen builds the Link an importing cluster needs to import from
// an exporting cluster, by reading the exporter's own API: where its gateway
// is reachable (the gateway Service) and who it is (its SPIFFE identity). It
// never reads or emits an API server address or credential: a Link holds only
// a gateway address and identity. `ferry link` prints what it builds.
package linkgen
