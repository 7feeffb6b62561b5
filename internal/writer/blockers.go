package writer

import (
	"slices"
	"sync"
)

// Blockers remembers, per owner, the foreign objects that stand in the way
// of its writes and the problems already announced. An owner is whatever a
// controller reconciles: a Link for the importer, "" for a reconciler with
// one key. It is safe for concurrent use.
//
// A foreign object's deletion does not concern the owner's own objects, so
// no watch of those would wake the owner; Owners answers which owners to
// wake. Announcing each problem once (an Event, a log line) keeps a stuck
// import from flooding the API with Events on every reconcile.
type Blockers struct {
	mu        sync.Mutex
	owners    map[string]map[string]bool // blocking object -> owners it blocks
	announced map[string]map[string]bool // owner -> problems announced
}

// ObjectKey names an object for Blockers: "Kind namespace/name", the way
// problems name it to a person.
func ObjectKey(kind, namespace, name string) string { return kind + " " + namespace + "/" + name }

// Note records that owner is now blocked by exactly the objects in blockers
// and has exactly the problems in problems (any strings that identify
// them), replacing what was noted before. It returns the problems that had
// not been announced for owner, in the order given: announce those.
func (b *Blockers) Note(owner string, blockers, problems []string) (fresh []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.owners == nil {
		b.owners, b.announced = map[string]map[string]bool{}, map[string]map[string]bool{}
	}
	for obj, owners := range b.owners {
		if owners[owner] && !slices.Contains(blockers, obj) {
			delete(owners, owner)
			if len(owners) == 0 {
				delete(b.owners, obj)
			}
		}
	}
	for _, obj := range blockers {
		if b.owners[obj] == nil {
			b.owners[obj] = map[string]bool{}
		}
		b.owners[obj][owner] = true
	}
	before := b.announced[owner]
	now := make(map[string]bool, len(problems))
	for _, p := range problems {
		if !before[p] && !now[p] {
			fresh = append(fresh, p)
		}
		now[p] = true
	}
	if len(now) == 0 {
		delete(b.announced, owner)
	} else {
		b.announced[owner] = now
	}
	return fresh
}

// Forget drops everything noted for owner.
func (b *Blockers) Forget(owner string) { b.Note(owner, nil, nil) }

// Owners returns the owners that the object (an ObjectKey) blocks, sorted.
func (b *Blockers) Owners(object string) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.owners[object]))
	for o := range b.owners[object] {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

// Blocks reports whether the object (an ObjectKey) blocks any owner.
func (b *Blockers) Blocks(object string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.owners[object]) > 0
}
