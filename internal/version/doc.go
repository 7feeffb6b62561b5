// Package version holds the build's version, set at link time by the Makefile
// (-ldflags "-X ferry.dev/ferry/internal/version.Version=..."), so that every
// binary reports the same truthful string.
package version
