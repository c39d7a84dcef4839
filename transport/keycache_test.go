package transport

import (
	"bytes"
	"fmt"
	"sync"
	"testing"

	"github.com/trent-kms/trent/crypto"
)

func secretOf(b byte) *crypto.Secret { return crypto.NewSecret(bytes.Repeat([]byte{b}, 32)) }

func TestKeyCacheBoundsAndZeroesEvicted(t *testing.T) {
	c := newKeyCache(2)
	first := c.put([]byte("v1"), secretOf(1))
	first.release()
	c.put([]byte("v2"), secretOf(2)).release()
	// v1 and v2 were both used; the CLOCK hand clears their bits, then evicts v1.
	c.put([]byte("v3"), secretOf(3)).release()
	if c.len() != 2 {
		t.Fatalf("cache holds %d keys, capacity 2", c.len())
	}
	if _, ok := c.get([]byte("v1")); ok {
		t.Fatal("v1 should have been evicted")
	}
	if !bytes.Equal(first.secret.Bytes(), make([]byte, 32)) {
		t.Fatal("evicted key was not zeroed")
	}
}

func TestKeyCacheDoesNotZeroAKeyInUse(t *testing.T) {
	c := newKeyCache(1)
	inUse := c.put([]byte("v1"), secretOf(7))
	c.put([]byte("v2"), secretOf(8)).release() // evicts v1 while a request holds it
	if !bytes.Equal(inUse.secret.Bytes(), bytes.Repeat([]byte{7}, 32)) {
		t.Fatal("key zeroed while a request still used it")
	}
	inUse.release()
	if !bytes.Equal(inUse.secret.Bytes(), make([]byte, 32)) {
		t.Fatal("evicted key not zeroed after its last user released it")
	}
}

func TestKeyCacheConcurrentUse(t *testing.T) {
	c := newKeyCache(8)
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				id := []byte(fmt.Sprint("v", (g+i)%20))
				e, ok := c.get(id)
				if !ok {
					e = c.put(id, secretOf(byte(1+(g+i)%20)))
				}
				if e.secret.Bytes()[0] == 0 {
					t.Error("got a zeroed key while holding a reference")
				}
				e.release()
			}
		}()
	}
	wg.Wait()
	c.purge()
	if c.len() != 0 {
		t.Fatal("purge left keys")
	}
}

func BenchmarkKeyCacheHit(b *testing.B) {
	c := newKeyCache(100)
	c.put([]byte("v"), secretOf(1)).release()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e, _ := c.get([]byte("v"))
			e.release()
		}
	})
}
