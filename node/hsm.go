package node

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/trent-kms/trent/hsm"
	"github.com/trent-kms/trent/hsm/p11"
	"github.com/trent-kms/trent/hsm/soft"
)

func openHSM(ctx context.Context, cfg Config, logger *slog.Logger) (hsm.Backend, error) {
	if cfg.HSM == HSMPKCS11 {
		b, err := p11.Open(ctx, p11.Config{
			Library:    cfg.PKCS11Library,
			TokenLabel: cfg.PKCS11Label,
			PINFile:    cfg.PKCS11PINFile,
			Logger:     logger,
		})
		if err != nil {
			return nil, fmt.Errorf("open PKCS#11 token %q: %w", cfg.PKCS11Label, err)
		}
		return b, nil
	}
	secret, created, err := soft.LoadOrCreateUnsealSecretFile(cfg.UnsealSecretFile)
	if err != nil {
		return nil, fmt.Errorf("unseal secret: %w", err)
	}
	if created {
		logger.Warn("created a new unseal secret for the software HSM; keep it safe and apart from the data dir in production", "file", cfg.UnsealSecretFile)
	}
	dir := filepath.Join(cfg.DataDir, "hsm")
	b, err := soft.Open(ctx, soft.Config{Dir: dir, UnsealSecret: secret, Logger: logger})
	if err != nil {
		return nil, fmt.Errorf("open software HSM in %s: %w", dir, err)
	}
	return b, nil
}
