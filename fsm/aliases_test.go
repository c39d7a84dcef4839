package fsm

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func TestCreateAlias(t *testing.T) {
	create := func(name, target string) *fsmpb.Command {
		return wrap(t0+hour, &fsmpb.CreateAlias{AliasName: name, TargetKeyId: target})
	}
	runApplyCases(t, []applyCase{
		{
			name: "to an enabled key",
			cmd:  create("alias/payments/db-2_x", keyEnabled),
			check: func(t *testing.T, h *harness, res *Result) {
				a, ok := h.f.Alias("alias/payments/db-2_x")
				if !ok || a != res.Alias || a.GetTargetKeyId() != keyEnabled ||
					a.GetCreationTimeUnixNano() != t0+hour || a.GetLastUpdatedTimeUnixNano() != t0+hour {
					t.Errorf("alias %v", a)
				}
			},
		},
		{name: "to a disabled key", cmd: create("alias/cold", keyDisabled)},
		{
			name:    "existing name",
			cmd:     create(aliasOfKey, keyDisabled),
			wantErr: ErrAlreadyExists,
			wantMsg: []string{"alias " + aliasOfKey + " already exists"},
		},
		{
			name:    "no prefix",
			cmd:     create("payments", keyEnabled),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{`alias name "payments" must be alias/ followed by a name`},
		},
		{
			name:    "prefix alone",
			cmd:     create("alias/", keyEnabled),
			wantErr: ErrInvalidArgument,
		},
		{
			name:    "reserved",
			cmd:     create("alias/aws/s3", keyEnabled),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"alias name alias/aws/s3 is in the reserved alias/aws/ space"},
		},
		{
			name:    "bad character",
			cmd:     create("alias/pay ments", keyEnabled),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"contains ' '"},
		},
		{
			name:    "too long",
			cmd:     create("alias/"+strings.Repeat("a", maxAliasNameLen), keyEnabled),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"262 characters; the limit is 256"},
		},
		{
			name:    "missing target",
			cmd:     create("alias/new", keyMissing),
			wantErr: ErrNotFound,
			wantMsg: []string{"key " + keyMissing + " does not exist"},
		},
		{
			name:    "no target",
			cmd:     create("alias/new", ""),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"alias alias/new: CreateAlias needs a target key id"},
		},
		{
			name:    "target pending deletion",
			cmd:     create("alias/new", keyPending),
			wantErr: ErrInvalidState,
			wantMsg: []string{"key " + keyPending + " is pending deletion; CreateAlias needs Enabled or Disabled"},
		},
	})
}

func TestUpdateAlias(t *testing.T) {
	update := func(name, target string) *fsmpb.Command {
		return wrap(t0+day, &fsmpb.UpdateAlias{AliasName: name, TargetKeyId: target})
	}
	runApplyCases(t, []applyCase{
		{
			name: "to another key of the same kind",
			cmd:  update(aliasOfKey, keyDisabled),
			check: func(t *testing.T, h *harness, res *Result) {
				a, _ := h.f.Alias(aliasOfKey)
				if a.GetTargetKeyId() != keyDisabled || a.GetCreationTimeUnixNano() != t0 || a.GetLastUpdatedTimeUnixNano() != t0+day {
					t.Errorf("alias %v", a)
				}
			},
		},
		{
			name:    "missing alias",
			cmd:     update("alias/none", keyDisabled),
			wantErr: ErrNotFound,
			wantMsg: []string{"alias alias/none does not exist"},
		},
		{
			name:    "missing target",
			cmd:     update(aliasOfKey, keyMissing),
			wantErr: ErrNotFound,
			wantMsg: []string{keyMissing},
		},
		{
			name:    "target pending deletion",
			cmd:     update(aliasOfKey, keyPending),
			wantErr: ErrInvalidState,
			wantMsg: []string{"UpdateAlias needs Enabled or Disabled"},
		},
		{
			name:    "target of another kind",
			cmd:     update(aliasOfKey, keyHMAC),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"alias " + aliasOfKey + " points at symmetric key", "cannot point it at HMAC key " + keyHMAC},
		},
		{
			name:    "reserved name",
			cmd:     update("alias/aws/ebs", keyEnabled),
			wantErr: ErrInvalidArgument,
		},
	})
}

func TestDeleteAlias(t *testing.T) {
	runApplyCases(t, []applyCase{
		{
			name: "existing",
			cmd:  wrap(t0+hour, &fsmpb.DeleteAlias{AliasName: aliasOfKey}),
			check: func(t *testing.T, h *harness, res *Result) {
				if _, ok := h.f.Alias(aliasOfKey); ok || res.Alias.GetName() != aliasOfKey {
					t.Errorf("alias still present or result %v", res.Alias)
				}
				if _, ok := h.f.Key(keyEnabled); !ok {
					t.Error("the target key went with the alias")
				}
			},
		},
		{
			name:    "missing",
			cmd:     wrap(t0+hour, &fsmpb.DeleteAlias{AliasName: "alias/none"}),
			wantErr: ErrNotFound,
			wantMsg: []string{"alias alias/none does not exist"},
		},
	})
}

func TestListAliases(t *testing.T) {
	h := newHarness(t)
	for i := range 5 {
		target := keyEnabled
		if i%2 == 1 {
			target = keyDisabled
		}
		h.mustApply(wrap(t0, &fsmpb.CreateAlias{AliasName: fmt.Sprintf("alias/a%d", i), TargetKeyId: target}))
	}
	names := func(as []*fsmpb.Alias) string {
		var s []string
		for _, a := range as {
			s = append(s, a.GetName())
		}
		return strings.Join(s, ",")
	}
	for _, tc := range []struct {
		keyID, after  string
		limit         int
		want          string
		wantTruncated bool
	}{
		{"", "", 0, "alias/a0,alias/a1,alias/a2,alias/a3,alias/a4,alias/app", false},
		{"", "", 2, "alias/a0,alias/a1", true},
		{"", "alias/a1", 2, "alias/a2,alias/a3", true},
		{"", "alias/a4", 2, "alias/app", false},
		{keyEnabled, "", 0, "alias/a0,alias/a2,alias/a4,alias/app", false},
		{keyEnabled, "alias/a0", 2, "alias/a2,alias/a4", true},
		{keyEnabled, "alias/a2", 2, "alias/a4,alias/app", false},
		{keyDisabled, "alias/a1", 1, "alias/a3", false},
		{keyMissing, "", 10, "", false},
	} {
		got, truncated := h.f.ListAliases(tc.keyID, tc.after, tc.limit)
		if names(got) != tc.want || truncated != tc.wantTruncated {
			t.Errorf("ListAliases(%q, %q, %d) = %s, %v; want %s, %v", tc.keyID, tc.after, tc.limit, names(got), truncated, tc.want, tc.wantTruncated)
		}
	}
}
