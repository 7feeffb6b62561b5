module github.com/libp2p/go-yamux/v5

go 1.23

require github.com/libp2p/go-buffer-pool v0.0.2
