// Package keycache is the bounded, reference-counted LRU both backends use to
// keep unwrapped backing keys (in-memory secrets or HSM session-object
// handles) between Seal/Open calls.
//
// The cache never disposes of a value itself: disposal of an HSM handle needs
// a session the cache does not have, and a value still in use by another
// goroutine must not be zeroed or destroyed under it. Instead every method
// that drops a value hands it back to the caller once no reference remains.
package keycache

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"sync"
)

// Key identifies a cached backing key: a digest of the domain key id and the
// key token, so the cache never holds token bytes as map keys.
type Key [sha256.Size]byte

// KeyFor derives the cache key for token under domain key dkID. The id is
// length-prefixed so that ("a", "bc…") and ("ab", "c…") cannot collide.
func KeyFor(dkID string, token []byte) Key {
	h := sha256.New()
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(dkID)))
	h.Write(n[:])
	h.Write([]byte(dkID))
	h.Write(token)
	var k Key
	h.Sum(k[:0])
	return k
}

// Entry is a referenced cache entry. Callers must Release it exactly once.
type Entry[V any] struct {
	key      Key
	value    V
	refs     int
	detached bool // no longer reachable through the map
	dispose  bool // hand the value back for disposal when refs reach zero
}

// Value returns the cached value.
func (e *Entry[V]) Value() V { return e.value }

// Cache is safe for concurrent use.
type Cache[V any] struct {
	mu       sync.Mutex
	capacity int
	order    *list.List // of *Entry[V], most recently used first
	entries  map[Key]*list.Element
}

// New returns a cache holding at most capacity values (minimum 1).
func New[V any](capacity int) *Cache[V] {
	return &Cache[V]{
		capacity: max(capacity, 1),
		order:    list.New(),
		entries:  make(map[Key]*list.Element),
	}
}

// Get returns a referenced entry for k, if cached.
func (c *Cache[V]) Get(k Key) (*Entry[V], bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[k]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(el)
	e := el.Value.(*Entry[V])
	e.refs++
	return e, true
}

// Add caches v under k and returns a referenced entry. If another goroutine
// cached k first, its entry is returned and v comes back in dispose. Values
// evicted to stay within capacity and no longer referenced are also returned
// in dispose.
func (c *Cache[V]) Add(k Key, v V) (e *Entry[V], dispose []V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.entries[k]; ok {
		c.order.MoveToFront(el)
		existing := el.Value.(*Entry[V])
		existing.refs++
		return existing, []V{v}
	}
	e = &Entry[V]{key: k, value: v, refs: 1}
	c.entries[k] = c.order.PushFront(e)
	for c.order.Len() > c.capacity {
		victim := c.detach(c.order.Back(), true)
		if victim.refs == 0 {
			dispose = append(dispose, victim.value)
		}
	}
	return e, dispose
}

// Release drops a reference. It returns the value and true when the entry
// has left the cache, is no longer referenced and must be disposed of.
func (c *Cache[V]) Release(e *Entry[V]) (v V, dispose bool) {
	if e == nil {
		return v, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.refs == 0 {
		return v, false // double release: ignore rather than dispose twice
	}
	e.refs--
	if e.refs == 0 && e.detached && e.dispose {
		e.dispose = false
		return e.value, true
	}
	return v, false
}

// Forget removes every entry whose value matches, without disposal: for
// values that became invalid on their own (an HSM session object whose
// session closed).
func (c *Cache[V]) Forget(match func(V) bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		if match(el.Value.(*Entry[V]).value) {
			c.detach(el, false)
		}
		el = next
	}
}

// Drain empties the cache and returns the unreferenced values for disposal;
// values still referenced are returned by their last Release.
func (c *Cache[V]) Drain() []V {
	c.mu.Lock()
	defer c.mu.Unlock()
	var dispose []V
	for el := c.order.Front(); el != nil; {
		next := el.Next()
		e := c.detach(el, true)
		if e.refs == 0 {
			dispose = append(dispose, e.value)
		}
		el = next
	}
	return dispose
}

// Len returns the number of cached entries.
func (c *Cache[V]) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}

func (c *Cache[V]) detach(el *list.Element, dispose bool) *Entry[V] {
	e := el.Value.(*Entry[V])
	c.order.Remove(el)
	delete(c.entries, e.key)
	e.detached = true
	e.dispose = dispose && e.refs > 0
	return e
}
