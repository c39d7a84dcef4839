package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"time"

	"github.com/trent-kms/trent/transport/kmspb"
)

var opNames = []string{"encrypt", "decrypt", "generate-data-key", "create-key", "describe-key"}

// decryptPoolSize ciphertexts are made before a run with decrypt in it, so
// decrypt measures decryption of varied blobs, not of one the server might
// special-case.
const decryptPoolSize = 128

// fixture is what the operations share, read-only once the run starts.
type fixture struct {
	keyID           string
	protectionLevel string
	plaintext       []byte
	ciphertexts     [][]byte
}

func needsKey(ops []weightedOp) bool {
	return slices.ContainsFunc(ops, func(o weightedOp) bool { return o.name != "create-key" })
}

func hasOp(ops []weightedOp, name string) bool {
	return slices.ContainsFunc(ops, func(o weightedOp) bool { return o.name == name })
}

// prepareFixture creates the key and ciphertexts the run needs. A key made
// through one endpoint may not have reached the others yet (followers apply
// it a little later), so it waits until every client can describe it.
func prepareFixture(ctx context.Context, cfg *loadConfig, clients []kmspb.KMSClient, log func(string, ...any)) (*fixture, error) {
	fx := &fixture{keyID: cfg.keyID, protectionLevel: cfg.protectionLevel, plaintext: make([]byte, cfg.size)}
	if _, err := rand.Read(fx.plaintext); err != nil {
		return nil, err
	}
	if !needsKey(cfg.mix) {
		return fx, nil
	}
	if fx.keyID == "" {
		resp, err := clients[0].CreateKey(ctx, &kmspb.CreateKeyRequest{
			Description:     "kmsbench",
			ProtectionLevel: cfg.protectionLevel,
		})
		if err != nil {
			return nil, fmt.Errorf("creating the benchmark key: %w", err)
		}
		fx.keyID = resp.GetKeyMetadata().GetKeyId()
		if fx.keyID == "" {
			return nil, errors.New("creating the benchmark key: CreateKey returned no key id")
		}
		log("created %s key %s", cfg.protectionLevel, fx.keyID)
		if err := waitKeyVisible(ctx, clients, fx.keyID, 10*time.Second); err != nil {
			return nil, err
		}
	}
	if hasOp(cfg.mix, "decrypt") {
		for i := range decryptPoolSize {
			plaintext := make([]byte, cfg.size)
			if _, err := rand.Read(plaintext); err != nil {
				return nil, err
			}
			resp, err := clients[i%len(clients)].Encrypt(ctx, &kmspb.EncryptRequest{KeyId: fx.keyID, Plaintext: plaintext})
			if err != nil {
				return nil, fmt.Errorf("encrypting the decrypt pool: %w", err)
			}
			fx.ciphertexts = append(fx.ciphertexts, resp.GetCiphertextBlob())
		}
	}
	return fx, nil
}

func waitKeyVisible(ctx context.Context, clients []kmspb.KMSClient, keyID string, patience time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, patience)
	defer cancel()
	for _, c := range clients {
		for {
			_, err := c.DescribeKey(ctx, &kmspb.DescribeKeyRequest{KeyId: keyID})
			if err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("key %s not visible on every endpoint within %v: %w", keyID, patience, err)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// newOpRequest returns a request performing op; worker numbers spread
// workers over the decrypt pool.
func newOpRequest(op string, client kmspb.KMSClient, fx *fixture, worker int) request {
	switch op {
	case "encrypt":
		// Reused across calls: the call marshals it before returning.
		req := &kmspb.EncryptRequest{KeyId: fx.keyID, Plaintext: fx.plaintext}
		return func(ctx context.Context) error {
			_, err := client.Encrypt(ctx, req)
			return err
		}
	case "decrypt":
		next := worker
		req := &kmspb.DecryptRequest{KeyId: fx.keyID}
		return func(ctx context.Context) error {
			req.CiphertextBlob = fx.ciphertexts[next%len(fx.ciphertexts)]
			next++
			_, err := client.Decrypt(ctx, req)
			return err
		}
	case "generate-data-key":
		req := &kmspb.GenerateDataKeyRequest{KeyId: fx.keyID, KeySpec: "AES_256"}
		return func(ctx context.Context) error {
			_, err := client.GenerateDataKey(ctx, req)
			return err
		}
	case "create-key":
		req := &kmspb.CreateKeyRequest{Description: "kmsbench", ProtectionLevel: fx.protectionLevel}
		return func(ctx context.Context) error {
			_, err := client.CreateKey(ctx, req)
			return err
		}
	case "describe-key":
		req := &kmspb.DescribeKeyRequest{KeyId: fx.keyID}
		return func(ctx context.Context) error {
			_, err := client.DescribeKey(ctx, req)
			return err
		}
	}
	panic("unknown operation " + op) // flags are validated before
}

// newMixRequest picks each request's operation at random by weight, from a
// random source of the worker's own.
func newMixRequest(ops []weightedOp, client kmspb.KMSClient, fx *fixture, worker int) request {
	if len(ops) == 1 {
		return newOpRequest(ops[0].name, client, fx, worker)
	}
	requests := make([]request, len(ops))
	cumulative := make([]int, len(ops))
	total := 0
	for i, o := range ops {
		requests[i] = newOpRequest(o.name, client, fx, worker)
		total += o.weight
		cumulative[i] = total
	}
	rng := mathrand.New(mathrand.NewPCG(uint64(worker), uint64(time.Now().UnixNano())))
	return func(ctx context.Context) error {
		pick := rng.IntN(total)
		for i, c := range cumulative {
			if pick < c {
				return requests[i](ctx)
			}
		}
		return requests[len(requests)-1](ctx)
	}
}
