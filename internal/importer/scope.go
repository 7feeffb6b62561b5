package importer

import (
	"maps"
	"slices"
	"sync"
	"time"

	"ferry.dev/ferry/internal/exports"
	"ferry.dev/ferry/internal/mirror"
)

// DefaultConsistencyInterval is how often a Link's pass recomputes every
// export even though no event asked for it. Between those checks a pass
// recomputes only the exports that feed updates and object events touched
// (a scoped pass); the full pass is the safety net for what no event
// reports, and it writes nothing when nothing differs. At 10k exports it
// costs a few hundred milliseconds of one core (docs/benchmarks.md).
const DefaultConsistencyInterval = 10 * time.Minute

// pending is what has happened to each Link since its last pass: the export
// keys that changed, or that everything must be recomputed. Event handlers
// and the feed write it; the Link's reconcile takes it. The work queue
// still carries only the Link's name, so a burst of changes to one Link is
// one pass over the keys it touched, and one Link is never reconciled twice
// at once: its passes must not race each other for its port claims.
type pending struct {
	mu    sync.Mutex
	links map[string]*touched
}

type touched struct {
	all  bool
	keys map[exports.Key]struct{}
}

func newPending() *pending { return &pending{links: map[string]*touched{}} }

// touch records that keys of link changed, or everything when all is set.
func (p *pending) touch(link string, all bool, keys ...exports.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.links[link]
	if t == nil {
		t = &touched{keys: map[exports.Key]struct{}{}}
		p.links[link] = t
	}
	if all {
		// The key set would be recomputed anyway; do not let it grow.
		t.all, t.keys = true, map[exports.Key]struct{}{}
		return
	}
	if t.all {
		return
	}
	for _, k := range keys {
		t.keys[k] = struct{}{}
	}
}

// take returns and clears what link has pending. A Link with no record
// (this process has not seen it yet) is due a full pass.
func (p *pending) take(link string) (all bool, keys []exports.Key) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.links[link]
	if t == nil {
		p.links[link] = &touched{keys: map[exports.Key]struct{}{}}
		return true, nil
	}
	all, keys = t.all, slices.SortedFunc(maps.Keys(t.keys), compareKeys)
	t.all, t.keys = false, map[exports.Key]struct{}{}
	return all, keys
}

func (p *pending) forget(link string) {
	p.mu.Lock()
	delete(p.links, link)
	p.mu.Unlock()
}

// basis is what every export of a Link shares in its desired state: when
// any of it changes, a scoped pass would be wrong, and the pass is full.
// Namespaces are not in it: their events mark every Link for a full pass.
type basis struct {
	generation int64
	session    *session
	synced     bool
	health     mirror.Health
	gateway    string // the local gateway's ready addresses, joined
}

// tally is a Link's import outcome per export, as the last passes left it:
// a scoped pass changes the entries of its keys, a full pass replaces it.
// It is what Link status and the imported-services gauge report, without
// a pass over every export.
type tally struct {
	imported map[exports.Key]struct{}
	problems map[exports.Key][]mirror.Problem
}

func newTally() *tally {
	return &tally{imported: map[exports.Key]struct{}{}, problems: map[exports.Key][]mirror.Problem{}}
}

// set replaces the outcome of keys with what st says of them (st was
// computed for exactly those keys).
func (t *tally) set(keys []exports.Key, st mirror.State) {
	for _, k := range keys {
		delete(t.imported, k)
		delete(t.problems, k)
	}
	for _, k := range st.ImportedKeys {
		t.imported[k] = struct{}{}
	}
	for _, pr := range st.Problems {
		t.problems[pr.Export] = append(t.problems[pr.Export], pr)
	}
}

// reset replaces every outcome with st's.
func (t *tally) reset(st mirror.State) {
	t.imported = make(map[exports.Key]struct{}, len(st.ImportedKeys))
	t.problems = map[exports.Key][]mirror.Problem{}
	t.set(nil, st)
}

// state is the tally as a mirror.State's summary: the count of imports and
// every problem, sorted by export (as mirror.Desired sorts them).
func (t *tally) state() mirror.State {
	st := mirror.State{Imported: len(t.imported)}
	for _, k := range slices.SortedFunc(maps.Keys(t.problems), compareKeys) {
		st.Problems = append(st.Problems, t.problems[k]...)
	}
	return st
}

// memory is what the Importer keeps of each Link between its passes. Only
// that Link's reconcile touches its entry (the work queue serialises a
// key), so the mutex guards only the map.
type memory struct {
	mu    sync.Mutex
	links map[string]*linkMemory
}

type linkMemory struct {
	basis    basis
	lastFull time.Time
	tally    *tally
}

func newMemory() *memory { return &memory{links: map[string]*linkMemory{}} }

func (m *memory) of(link string) *linkMemory {
	m.mu.Lock()
	defer m.mu.Unlock()
	lm := m.links[link]
	if lm == nil {
		lm = &linkMemory{tally: newTally()}
		m.links[link] = lm
	}
	return lm
}

func (m *memory) forget(link string) {
	m.mu.Lock()
	delete(m.links, link)
	m.mu.Unlock()
}
