package fsm

import (
	"cmp"
	"iter"
	"maps"
	"slices"
)

type entry[V any] struct {
	id string
	v  V
}

// Block sizes of a table's ordered index. A change copies one block (at most
// maxBlock entries), and a snapshot copies one pointer per block.
const (
	maxBlock = 64
	minBlock = maxBlock / 4 // below this a block merges with a neighbour
)

// table indexes immutable records twice: a map for the data plane's O(1)
// lookups, and an ordered index for list pages and snapshots.
//
// The ordered index is a list of sorted blocks that are never modified once
// stored: a change builds a new block and swaps it in. So a snapshot only
// copies the list of blocks and is never affected by later changes, and
// neither a snapshot nor an insert costs O(n) copying.
type table[V any] struct {
	byID   map[string]V
	blocks [][]entry[V] // non-empty, sorted, in order
}

func newTable[V any]() table[V] {
	return table[V]{byID: make(map[string]V)}
}

// tableOf builds a table from records in any order (Restore).
func tableOf[V any](byID map[string]V) table[V] {
	ids := slices.Sorted(maps.Keys(byID))
	t := table[V]{byID: byID}
	// Half-full blocks: the next inserts do not split them at once.
	for chunk := range slices.Chunk(ids, maxBlock/2) {
		blk := make([]entry[V], len(chunk))
		for i, id := range chunk {
			blk[i] = entry[V]{id, byID[id]}
		}
		t.blocks = append(t.blocks, blk)
	}
	return t
}

func (t *table[V]) get(id string) (V, bool) {
	v, ok := t.byID[id]
	return v, ok
}

func (t *table[V]) len() int { return len(t.byID) }

// locate returns the block that holds id or would receive it, and the
// position of id in it.
func (t *table[V]) locate(id string) (bi, i int, found bool) {
	bi, _ = slices.BinarySearchFunc(t.blocks, id, func(blk []entry[V], id string) int {
		return cmp.Compare(blk[len(blk)-1].id, id)
	})
	bi = min(bi, len(t.blocks)-1) // past the end: append to the last block
	i, found = slices.BinarySearchFunc(t.blocks[bi], id, compareID[V])
	return bi, i, found
}

func compareID[V any](e entry[V], id string) int { return cmp.Compare(e.id, id) }

// put inserts or replaces; the previous value is not modified, so readers and
// snapshots holding it keep a consistent view.
func (t *table[V]) put(id string, v V) {
	t.byID[id] = v
	if len(t.blocks) == 0 {
		t.blocks = [][]entry[V]{{{id, v}}}
		return
	}
	bi, i, found := t.locate(id)
	if found {
		blk := slices.Clone(t.blocks[bi])
		blk[i].v = v
		t.blocks[bi] = blk
		return
	}
	blk := slices.Insert(slices.Clone(t.blocks[bi]), i, entry[V]{id, v})
	if len(blk) <= maxBlock {
		t.blocks[bi] = blk
		return
	}
	half := len(blk) / 2
	t.blocks[bi] = blk[:half:half]
	t.blocks = slices.Insert(t.blocks, bi+1, blk[half:])
}

func (t *table[V]) remove(id string) {
	if _, ok := t.byID[id]; !ok {
		return
	}
	delete(t.byID, id)
	bi, i, _ := t.locate(id)
	old := t.blocks[bi]
	blk := make([]entry[V], 0, len(old)-1)
	blk = append(append(blk, old[:i]...), old[i+1:]...)
	switch {
	case len(blk) == 0:
		t.blocks = slices.Delete(t.blocks, bi, bi+1)
	case len(blk) < minBlock && bi+1 < len(t.blocks) && len(blk)+len(t.blocks[bi+1]) <= maxBlock:
		t.blocks[bi] = append(blk, t.blocks[bi+1]...)
		t.blocks = slices.Delete(t.blocks, bi+1, bi+2)
	case len(blk) < minBlock && bi > 0 && len(blk)+len(t.blocks[bi-1]) <= maxBlock:
		t.blocks[bi-1] = append(slices.Clone(t.blocks[bi-1]), blk...)
		t.blocks = slices.Delete(t.blocks, bi, bi+1)
	default:
		t.blocks[bi] = blk
	}
}

// after yields the entries with ids greater than id, in order. Use it under
// the lock only.
func (t *table[V]) after(id string) iter.Seq2[string, V] {
	return func(yield func(string, V) bool) {
		if len(t.blocks) == 0 {
			return
		}
		bi, i, found := t.locate(id)
		if found {
			i++
		}
		for _, blk := range t.blocks[bi:] {
			for _, e := range blk[i:] {
				if !yield(e.id, e.v) {
					return
				}
			}
			i = 0
		}
	}
}

// all yields every entry in order.
func (t *table[V]) all() iter.Seq2[string, V] { return t.after("") }

// frozen returns the ordered index as it is now; it stays valid while the
// table changes, because blocks are never modified once stored.
func (t *table[V]) frozen() [][]entry[V] { return slices.Clone(t.blocks) }

// logChunkLen is the element count of one chunkLog chunk: a snapshot copies
// one slice header per chunk.
const logChunkLen = 128

// chunkLog is a sequence that grows at the back and shrinks at the front
// (the management events, the removed grants), shared with snapshots without
// copying its elements.
//
// It is a list of chunks of up to logChunkLen elements stored in place, so
// adding one allocates nothing but, every logChunkLen elements, a chunk.
// Handed-out elements are never written again: add extends the last chunk
// into capacity that no snapshot's copy of the chunk header covers and that
// was never used before, and popFront only reslices this log's own header.
// So frozen costs one header per chunk, add and popFront O(1), and pointers
// to elements stay valid and unchanged for as long as anyone holds them.
type chunkLog[T any] struct {
	chunks [][]T // non-empty chunks, oldest first
	n      int
}

func (l *chunkLog[T]) len() int { return l.n }

// add appends a zero element and returns it for the caller to fill before
// anyone can read it (under the write lock, before the next frozen).
func (l *chunkLog[T]) add() *T {
	if k := len(l.chunks); k == 0 || len(l.chunks[k-1]) == cap(l.chunks[k-1]) {
		l.chunks = append(l.chunks, make([]T, 0, logChunkLen))
	}
	last := &l.chunks[len(l.chunks)-1]
	*last = (*last)[:len(*last)+1]
	l.n++
	return &(*last)[len(*last)-1]
}

// front returns the oldest element; the log must not be empty.
func (l *chunkLog[T]) front() *T { return &l.chunks[0][0] }

// popFront drops the oldest element. It stays in its chunk (a snapshot may
// still be writing it) until the whole chunk is dropped.
func (l *chunkLog[T]) popFront() {
	l.chunks[0] = l.chunks[0][1:]
	if len(l.chunks[0]) == 0 {
		l.chunks[0] = nil
		l.chunks = l.chunks[1:]
	}
	l.n--
}

// frozen returns the log as it is now; it stays valid while the log changes.
func (l *chunkLog[T]) frozen() [][]T { return slices.Clone(l.chunks) }

// elements yields a pointer to each element of chunks, oldest first.
func elements[T any](chunks [][]T) iter.Seq[*T] {
	return func(yield func(*T) bool) {
		for _, c := range chunks {
			for i := range c {
				if !yield(&c[i]) {
					return
				}
			}
		}
	}
}
