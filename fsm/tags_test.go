package fsm

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

func tagsN(n int, prefix string) map[string]string {
	tags := make(map[string]string, n)
	for i := range n {
		tags[fmt.Sprintf("%s%02d", prefix, i)] = "v"
	}
	return tags
}

func TestTagResource(t *testing.T) {
	tag := func(id string, tags map[string]string) *fsmpb.Command {
		return wrap(t0+hour, &fsmpb.TagResource{KeyId: id, Tags: tags})
	}
	with48 := func(h *harness) { h.mustApply(wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: tagsN(48, "t")})) }
	runApplyCases(t, []applyCase{
		{
			name: "upsert",
			setup: func(h *harness) {
				h.mustApply(wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: map[string]string{"env": "dev", "team": "pay"}}))
			},
			cmd: tag(keyEnabled, map[string]string{"env": "prod", "cost": ""}),
			check: func(t *testing.T, h *harness, res *Result) {
				want := map[string]string{"env": "prod", "team": "pay", "cost": ""}
				if got := h.key(keyEnabled).GetTags(); !maps.Equal(got, want) {
					t.Errorf("tags %v, want %v", got, want)
				}
			},
		},
		{name: "disabled key", cmd: tag(keyDisabled, map[string]string{"a": "b"})},
		{
			name:  "exactly 50 counting overwrites once",
			setup: with48,
			cmd:   tag(keyEnabled, map[string]string{"t00": "new", "x1": "", "x2": ""}),
			check: func(t *testing.T, h *harness, res *Result) {
				if n := len(h.key(keyEnabled).GetTags()); n != 50 {
					t.Errorf("%d tags", n)
				}
			},
		},
		{
			name:    "51",
			setup:   with48,
			cmd:     tag(keyEnabled, map[string]string{"x1": "", "x2": "", "x3": ""}),
			wantErr: ErrLimitExceeded,
			wantMsg: []string{"key " + keyEnabled + " would have 51 tags; the limit is 50"},
		},
		{
			name:    "pending deletion",
			cmd:     tag(keyPending, map[string]string{"a": "b"}),
			wantErr: ErrInvalidState,
			wantMsg: []string{"is pending deletion; TagResource needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     tag(keyMissing, map[string]string{"a": "b"}),
			wantErr: ErrNotFound,
		},
		{
			name:    "no tags",
			cmd:     tag(keyEnabled, nil),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"TagResource needs at least one tag"},
		},
		{
			name:    "tag key too long",
			cmd:     tag(keyEnabled, map[string]string{strings.Repeat("k", 129): "v"}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"has 129 characters; it needs 1..128"},
		},
		{
			name:    "tag value too long",
			cmd:     tag(keyEnabled, map[string]string{"k": strings.Repeat("v", 257)}),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{`value of tag "k" has 257 characters; the limit is 256`},
		},
	})
}

func TestUntagResource(t *testing.T) {
	untag := func(id string, keys ...string) *fsmpb.Command {
		return wrap(t0+hour, &fsmpb.UntagResource{KeyId: id, TagKeys: keys})
	}
	tagged := func(h *harness) {
		h.mustApply(wrap(t0, &fsmpb.TagResource{KeyId: keyEnabled, Tags: map[string]string{"env": "dev", "team": "pay"}}))
	}
	runApplyCases(t, []applyCase{
		{
			name:  "removes present, ignores absent",
			setup: tagged,
			cmd:   untag(keyEnabled, "env", "nope"),
			check: func(t *testing.T, h *harness, res *Result) {
				if got := h.key(keyEnabled).GetTags(); !maps.Equal(got, map[string]string{"team": "pay"}) {
					t.Errorf("tags %v", got)
				}
			},
		},
		{
			name:  "only absent keys leave the key as it was",
			setup: tagged,
			cmd:   untag(keyEnabled, "nope"),
			check: func(t *testing.T, h *harness, res *Result) {
				if res.Key != h.key(keyEnabled) || len(res.Key.GetTags()) != 2 {
					t.Errorf("key %v", res.Key)
				}
			},
		},
		{
			name:    "pending deletion",
			cmd:     untag(keyPending, "env"),
			wantErr: ErrInvalidState,
			wantMsg: []string{"UntagResource needs Enabled or Disabled"},
		},
		{
			name:    "missing key",
			cmd:     untag(keyMissing, "env"),
			wantErr: ErrNotFound,
		},
		{
			name:    "no tag keys",
			cmd:     untag(keyEnabled),
			wantErr: ErrInvalidArgument,
			wantMsg: []string{"UntagResource needs at least one tag key"},
		},
	})
}
