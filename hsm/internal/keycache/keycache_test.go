package keycache

import (
	"slices"
	"sync"
	"testing"
)

func key(b byte) Key { return KeyFor("dk", []byte{b}) }

func TestKeyForSeparatesIDFromToken(t *testing.T) {
	if KeyFor("a", []byte("bc")) == KeyFor("ab", []byte("c")) {
		t.Fatal("id/token boundary is ambiguous")
	}
}

func TestEvictsLeastRecentlyUsed(t *testing.T) {
	c := New[int](2)
	for i := range 2 {
		e, d := c.Add(key(byte(i)), i)
		if len(d) != 0 {
			t.Fatalf("unexpected disposal %v", d)
		}
		c.Release(e)
	}
	e, _ := c.Get(key(0)) // 0 becomes most recent, 1 the victim
	c.Release(e)
	e, dispose := c.Add(key(2), 2)
	c.Release(e)
	if !slices.Equal(dispose, []int{1}) {
		t.Fatalf("disposed %v, want [1]", dispose)
	}
	if _, ok := c.Get(key(1)); ok {
		t.Fatal("evicted entry still cached")
	}
}

func TestReferencedVictimIsDisposedOnLastRelease(t *testing.T) {
	c := New[int](1)
	held, _ := c.Add(key(0), 0)
	e, dispose := c.Add(key(1), 1)
	c.Release(e)
	if len(dispose) != 0 {
		t.Fatalf("disposed %v while referenced", dispose)
	}
	v, ok := c.Release(held)
	if !ok || v != 0 {
		t.Fatalf("Release = %v, %v; want 0, true", v, ok)
	}
	if _, ok := c.Release(held); ok {
		t.Fatal("double release disposed twice")
	}
}

func TestDuplicateAddReturnsExistingAndNewValueForDisposal(t *testing.T) {
	c := New[int](4)
	first, _ := c.Add(key(0), 10)
	second, dispose := c.Add(key(0), 20)
	if second.Value() != 10 || !slices.Equal(dispose, []int{20}) {
		t.Fatalf("got %v, dispose %v", second.Value(), dispose)
	}
	c.Release(first)
	c.Release(second)
}

func TestForgetDoesNotDispose(t *testing.T) {
	c := New[int](4)
	held, _ := c.Add(key(0), 0)
	e, _ := c.Add(key(1), 1)
	c.Release(e)
	c.Forget(func(v int) bool { return true })
	if c.Len() != 0 {
		t.Fatalf("Len = %d after Forget", c.Len())
	}
	if _, ok := c.Release(held); ok {
		t.Fatal("forgotten value handed back for disposal")
	}
}

func TestDrain(t *testing.T) {
	c := New[int](4)
	held, _ := c.Add(key(0), 0)
	e, _ := c.Add(key(1), 1)
	c.Release(e)
	if got := c.Drain(); !slices.Equal(got, []int{1}) {
		t.Fatalf("Drain = %v, want [1]", got)
	}
	if v, ok := c.Release(held); !ok || v != 0 {
		t.Fatalf("Release after Drain = %v, %v", v, ok)
	}
}

func TestConcurrentUseDisposesEachValueOnce(t *testing.T) {
	c := New[*int](3)
	var mu sync.Mutex
	disposed := map[*int]int{}
	record := func(vs ...*int) {
		mu.Lock()
		defer mu.Unlock()
		for _, v := range vs {
			disposed[v]++
		}
	}
	var created sync.Map
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				k := key(byte((g + i) % 8))
				e, ok := c.Get(k)
				if !ok {
					v := new(int)
					created.Store(v, true)
					var d []*int
					e, d = c.Add(k, v)
					record(d...)
				}
				if v, ok := c.Release(e); ok {
					record(v)
				}
			}
		}()
	}
	wg.Wait()
	record(c.Drain()...)
	created.Range(func(k, _ any) bool {
		if n := disposed[k.(*int)]; n != 1 {
			t.Errorf("value disposed %d times", n)
		}
		return true
	})
}
