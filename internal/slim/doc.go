// Package slim makes the objects that informer caches hold smaller.
//
// An importing cluster's controller caches five objects per import (docs/
// scale.md), each decoded with its own copy of every label and annotation
// key and value, though those are mostly the same few strings on every
// object: Ferry's ownership keys, the source cluster, the Link. Metadata
// drops the managed fields (which no reader needs) and replaces each of
// those strings with one shared copy (package unique), which is about a
// third of the metadata's size. The transforms of the importer, the
// clusterset reconciler and the export watcher call it on what they keep.
package slim
