package transport

import (
	"sync"
	"sync/atomic"

	"github.com/trent-kms/trent/crypto"
)

// keyCache holds SOFTWARE-level backing keys unwrapped by the HSM, keyed by
// key version id (random and unique per version). A hit costs a read lock and
// two atomic adds; eviction is CLOCK (second chance), so hot keys stay without
// an LRU list to update on every request.
//
// Evicted keys are zeroed, but only once no request still uses them: get
// takes a reference under the read lock (so it cannot race an eviction, which
// holds the write lock) and release drops it; whichever of release and evict
// comes last zeroes the key.
type keyCache struct {
	capacity int

	mu      sync.RWMutex
	entries map[string]*cachedKey
	ring    []string // insertion order for the CLOCK hand
	hand    int
}

type cachedKey struct {
	secret     *crypto.Secret
	refs       atomic.Int64
	evicted    atomic.Bool
	referenced atomic.Bool
}

func (e *cachedKey) release() {
	if e.refs.Add(-1) == 0 && e.evicted.Load() {
		e.secret.Zero()
	}
}

func (e *cachedKey) evict() {
	e.evicted.Store(true)
	if e.refs.Load() == 0 {
		e.secret.Zero()
	}
}

func newKeyCache(capacity int) *keyCache {
	return &keyCache{capacity: max(capacity, 1), entries: make(map[string]*cachedKey)}
}

// get returns the cached key for versionID and takes a reference; the caller
// must call release on the returned entry when done with the secret.
func (c *keyCache) get(versionID []byte) (*cachedKey, bool) {
	c.mu.RLock()
	e, ok := c.entries[string(versionID)]
	if ok {
		e.refs.Add(1)
	}
	c.mu.RUnlock()
	if ok {
		e.referenced.Store(true)
	}
	return e, ok
}

// put caches secret (taking ownership) unless another caller cached the same
// version first, and returns the cached entry with a reference taken.
func (c *keyCache) put(versionID []byte, secret *crypto.Secret) *cachedKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[string(versionID)]; ok {
		secret.Zero()
		e.refs.Add(1)
		return e
	}
	for len(c.entries) >= c.capacity {
		c.evictOne()
	}
	e := &cachedKey{secret: secret}
	e.refs.Add(1)
	e.referenced.Store(true)
	c.entries[string(versionID)] = e
	c.ring = append(c.ring, string(versionID))
	return e
}

// evictOne advances the CLOCK hand, giving referenced entries a second
// chance, and evicts the first unreferenced one. Callers hold mu.
func (c *keyCache) evictOne() {
	for {
		if c.hand >= len(c.ring) {
			c.hand = 0
		}
		id := c.ring[c.hand]
		e := c.entries[id]
		if e.referenced.Swap(false) {
			c.hand++
			continue
		}
		delete(c.entries, id)
		c.ring = append(c.ring[:c.hand], c.ring[c.hand+1:]...)
		e.evict()
		return
	}
}

// drop evicts the given versions (a deleted key's material).
func (c *keyCache) drop(versionIDs ...[]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range versionIDs {
		if e, ok := c.entries[string(v)]; ok {
			delete(c.entries, string(v))
			e.evict()
		}
	}
	kept := c.ring[:0]
	for _, id := range c.ring {
		if _, ok := c.entries[id]; ok {
			kept = append(kept, id)
		}
	}
	c.ring = kept
	c.hand = 0
}

// purge evicts every cached key (node shutdown).
func (c *keyCache) purge() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, e := range c.entries {
		delete(c.entries, id)
		e.evict()
	}
	c.ring = nil
	c.hand = 0
}

func (c *keyCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}
