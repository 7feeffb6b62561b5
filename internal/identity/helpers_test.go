package identity_test

import "crypto/rand"

// randReader is crypto/rand without the package-level variable, so a test
// cannot accidentally swap it.
type randReader struct{}

func (randReader) Read(p []byte) (int, error) { return rand.Read(p) }
