package fsm

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestTableAgainstMap drives a table and a plain map with the same random
// inserts, updates and removals, checking the ordered index, the block
// bounds, after(), and that frozen views never change.
func TestTableAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tbl := newTable[int]()
	model := map[string]int{}
	type frozenView struct {
		blocks [][]entry[int]
		want   []entry[int]
	}
	var views []frozenView

	for step := range 30_000 {
		id := fmt.Sprintf("id-%05d", rng.IntN(3000))
		// Phases bias growth, then shrinkage, so blocks split and merge.
		if grow := step%10_000 < 6000; rng.IntN(100) < map[bool]int{true: 75, false: 20}[grow] {
			tbl.put(id, step)
			model[id] = step
		} else {
			tbl.remove(id)
			delete(model, id)
		}
		if step%997 == 0 {
			checkTable(t, &tbl, model)
			views = append(views, frozenView{tbl.frozen(), entriesOf(model)})
		}
	}
	checkTable(t, &tbl, model)
	for i, v := range views {
		if got := slices.Collect(flatten(v.blocks)); !slices.Equal(got, v.want) {
			t.Fatalf("frozen view %d changed", i)
		}
	}

	rebuilt := tableOf(maps.Clone(model))
	checkTable(t, &rebuilt, model)
}

func entriesOf(model map[string]int) []entry[int] {
	var out []entry[int]
	for _, id := range slices.Sorted(maps.Keys(model)) {
		out = append(out, entry[int]{id, model[id]})
	}
	return out
}

func checkTable(t *testing.T, tbl *table[int], model map[string]int) {
	t.Helper()
	want := entriesOf(model)
	if got := slices.Collect(flatten(tbl.blocks)); !slices.Equal(got, want) {
		t.Fatalf("ordered index has %d entries, model %d, or they differ", len(got), len(want))
	}
	if tbl.len() != len(model) || !maps.Equal(tbl.byID, model) {
		t.Fatal("map index differs from the model")
	}
	for i, blk := range tbl.blocks {
		if len(blk) == 0 || len(blk) > maxBlock {
			t.Fatalf("block %d has %d entries", i, len(blk))
		}
	}
	if len(model) > 0 && len(tbl.blocks) > 1+4*len(model)/minBlock {
		t.Fatalf("%d blocks for %d entries: merging does not keep blocks full", len(tbl.blocks), len(model))
	}
	for _, after := range []string{"", "id-00000", "id-01500", "id-015000", "id-02999", "zzz"} {
		var got []entry[int]
		for id, v := range tbl.after(after) {
			got = append(got, entry[int]{id, v})
		}
		var expect []entry[int]
		for _, e := range want {
			if e.id > after {
				expect = append(expect, e)
			}
		}
		if !slices.Equal(got, expect) {
			t.Fatalf("after(%q): %d entries, want %d", after, len(got), len(expect))
		}
	}
}

func TestChunkLog(t *testing.T) {
	var l chunkLog[int]
	push := func(v int) { *l.add() = v }
	type view struct {
		first, last int
		chunks      [][]int
	}
	var views []view
	var held []*int // elements handed out, as ManagementEvents does
	for i := range 3 * logChunkLen {
		push(i)
		if i%100 == 0 {
			views = append(views, view{*l.front(), i, l.frozen()})
			held = append(held, l.front())
		}
		if i%3 == 0 {
			l.popFront() // the log grows by two thirds of the pushes
		}
	}
	var got []int
	for v := range elements(l.frozen()) {
		got = append(got, *v)
	}
	if len(got) != l.len() || got[0] != 3*logChunkLen-l.len() || got[len(got)-1] != 3*logChunkLen-1 {
		t.Errorf("log holds %d..%d (%d), len %d", got[0], got[len(got)-1], len(got), l.len())
	}
	for i := 1; i < len(got); i++ {
		if got[i] != got[i-1]+1 {
			t.Fatalf("gap at %d", i)
		}
	}
	for _, c := range l.chunks {
		if len(c) == 0 || cap(c) > logChunkLen {
			t.Errorf("chunk of len %d cap %d", len(c), cap(c))
		}
	}
	// A frozen view, and an element handed out, are unaffected by later
	// adds and pops.
	for i, v := range views {
		want := v.first
		for got := range elements(v.chunks) {
			if *got != want {
				t.Fatalf("a view frozen holding %d..%d has %d where %d was", v.first, v.last, *got, want)
			}
			want++
		}
		if want != v.last+1 {
			t.Errorf("a view frozen holding %d..%d ends at %d", v.first, v.last, want-1)
		}
		if *held[i] != v.first {
			t.Errorf("a held element changed from %d to %d", v.first, *held[i])
		}
	}
	for l.len() > 0 {
		l.popFront()
	}
	if len(l.chunks) != 0 {
		t.Errorf("%d chunks left in an empty log", len(l.chunks))
	}
	push(7)
	if l.len() != 1 || *l.front() != 7 {
		t.Errorf("after emptying: len %d front %d", l.len(), *l.front())
	}
}
