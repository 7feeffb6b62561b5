// Package feedpb is the export feed's wire format, generated from
// feed.proto. Regenerate with `make proto` (see docs/feed.md) after editing
// the .proto; never edit the .pb.go files.
package feedpb

//go:generate protoc -I . --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative feed.proto
