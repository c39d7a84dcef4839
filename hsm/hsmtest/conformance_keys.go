package hsmtest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/trent-kms/trent/hsm"
)

func testDomainKeyLifecycle(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	if b.Kind() == "" {
		t.Error("Kind is empty")
	}
	id := uniqueID("dk")
	if has := must(b.HasDomainKey(ctx, id))(t); has {
		t.Fatal("HasDomainKey before CreateDomainKey = true")
	}
	noErr(t, b.CreateDomainKey(ctx, id))
	if has := must(b.HasDomainKey(ctx, id))(t); !has {
		t.Fatal("HasDomainKey after CreateDomainKey = false")
	}
	wantErr(t, b.CreateDomainKey(ctx, id), hsm.ErrExists, "second CreateDomainKey")
	for _, bad := range []string{"", "with space", "x/y", string(make([]byte, 65))} {
		wantErr(t, b.CreateDomainKey(ctx, bad), hsm.ErrInvalidInput, fmt.Sprintf("CreateDomainKey(%q)", bad))
		_, err := b.HasDomainKey(ctx, bad)
		wantErr(t, err, hsm.ErrInvalidInput, fmt.Sprintf("HasDomainKey(%q)", bad))
	}
}

func testConcurrentCreateDomainKey(t *testing.T, b hsm.Backend) {
	id := uniqueID("dk")
	var created, existed atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := b.CreateDomainKey(ctxT(t), id)
			switch {
			case err == nil:
				created.Add(1)
			case errors.Is(err, hsm.ErrExists):
				existed.Add(1)
			default:
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if created.Load() != 1 || existed.Load() != 15 {
		t.Fatalf("16 concurrent creates: %d succeeded, %d found it existing; want 1 and 15", created.Load(), existed.Load())
	}
}

func testKeyToken(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	dk := newDomainKey(t, b)
	token := must(b.GenerateKeyToken(ctx, dk))(t)
	if len(token) != hsm.BackingKeySize+8 {
		t.Fatalf("token is %d bytes, want %d", len(token), hsm.BackingKeySize+8)
	}
	key := must(b.UnwrapKeyToken(ctx, dk, token))(t)
	if key.Len() != hsm.BackingKeySize {
		t.Fatalf("unwrapped key is %d bytes", key.Len())
	}
	again := must(b.UnwrapKeyToken(ctx, dk, token))(t)
	if !bytes.Equal(key.Bytes(), again.Bytes()) {
		t.Fatal("unwrapping one token twice gave different keys")
	}
	other := must(b.GenerateKeyToken(ctx, dk))(t)
	otherKey := must(b.UnwrapKeyToken(ctx, dk, other))(t)
	if bytes.Equal(token, other) || bytes.Equal(key.Bytes(), otherKey.Bytes()) {
		t.Fatal("two generated key tokens are equal")
	}
	if fmt.Sprint(key) == fmt.Sprint(key.Bytes()) {
		t.Fatal("unwrapped key prints its bytes")
	}

	_, err := b.GenerateKeyToken(ctx, uniqueID("missing"))
	wantErr(t, err, hsm.ErrNotFound, "GenerateKeyToken with unknown domain key")
	_, err = b.UnwrapKeyToken(ctx, uniqueID("missing"), token)
	wantErr(t, err, hsm.ErrNotFound, "UnwrapKeyToken with unknown domain key")
	for _, size := range []int{0, 39, 41} {
		_, err = b.UnwrapKeyToken(ctx, dk, make([]byte, size))
		wantErr(t, err, hsm.ErrInvalidInput, fmt.Sprintf("UnwrapKeyToken of %d bytes", size))
	}
}

func testKeyTokenUnderOtherDomainKey(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	dkA, dkB := newDomainKey(t, b), newDomainKey(t, b)
	token := must(b.GenerateKeyToken(ctx, dkA))(t)
	_, err := b.UnwrapKeyToken(ctx, dkB, token)
	wantErr(t, err, hsm.ErrDecrypt, "unwrap under another domain key")
}

func testKeyTokenTampered(t *testing.T, b hsm.Backend) {
	ctx := ctxT(t)
	dk := newDomainKey(t, b)
	token := must(b.GenerateKeyToken(ctx, dk))(t)
	for _, i := range []int{0, 7, 8, 20, len(token) - 1} {
		bad := bytes.Clone(token)
		bad[i] ^= 0x01
		_, err := b.UnwrapKeyToken(ctx, dk, bad)
		wantErr(t, err, hsm.ErrDecrypt, fmt.Sprintf("unwrap with byte %d flipped", i))
	}
}
