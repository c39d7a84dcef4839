package membership

import (
	"slices"
	"testing"
	"time"
)

func TestCleanupPolicy(t *testing.T) {
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	voters := func(ids ...string) []RaftServer {
		var s []RaftServer
		for _, id := range ids {
			s = append(s, RaftServer{ID: id, Voter: true})
		}
		return s
	}
	policy := CleanupPolicy{After: time.Minute}

	cases := []struct {
		name    string
		policy  CleanupPolicy
		self    string
		servers []RaftServer
		failed  map[string]time.Time
		want    []string
	}{
		{
			name:    "nothing failed",
			servers: voters("a", "b", "c"),
			want:    nil,
		},
		{
			name:    "failed for less than the threshold stays",
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"c": ago(59 * time.Second)},
			want:    nil,
		},
		{
			name:    "failed exactly the threshold goes",
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"c": ago(time.Minute)},
			want:    []string{"c"},
		},
		{
			name:    "two of five go, oldest first",
			servers: voters("a", "b", "c", "d", "e"),
			failed:  map[string]time.Time{"d": ago(2 * time.Minute), "e": ago(5 * time.Minute)},
			want:    []string{"e", "d"},
		},
		{
			name:    "only the aged one of two failures goes",
			servers: voters("a", "b", "c", "d", "e"),
			failed:  map[string]time.Time{"d": ago(2 * time.Minute), "e": ago(time.Second)},
			want:    []string{"d"},
		},
		{
			name:    "healthy voters not a quorum: none removed",
			servers: voters("a", "b", "c", "d", "e"),
			failed:  map[string]time.Time{"c": ago(time.Hour), "d": ago(time.Hour), "e": ago(time.Hour)},
			want:    nil,
		},
		{
			name:    "recent failures count against quorum though not removable",
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"b": ago(time.Hour), "c": ago(time.Second)},
			want:    nil,
		},
		{
			name:    "self is never removed, even if gossip calls it failed",
			self:    "a",
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"a": ago(time.Hour)},
			want:    nil,
		},
		{
			name:    "ids outside the configuration are ignored",
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"zz": ago(time.Hour)},
			want:    nil,
		},
		{
			name: "failed nonvoters go first and regardless of quorum",
			servers: append(voters("a", "b", "c"),
				RaftServer{ID: "n1"}, RaftServer{ID: "n2"}),
			failed: map[string]time.Time{
				"n2": ago(time.Hour), "n1": ago(2 * time.Hour),
				"b": ago(time.Hour), "c": ago(time.Hour),
			},
			want: []string{"n1", "n2"},
		},
		{
			name:    "MinVoters floor stops removals",
			policy:  CleanupPolicy{After: time.Minute, MinVoters: 4},
			servers: voters("a", "b", "c", "d", "e"),
			failed:  map[string]time.Time{"d": ago(2 * time.Hour), "e": ago(time.Hour)},
			want:    []string{"d"},
		},
		{
			name: "a stricter quorum rule removes fewer",
			// Quorum of all voters: no voter may be missing, so nothing is removable
			// while anything is failed.
			policy:  CleanupPolicy{After: time.Minute, Quorum: func(n int) int { return n }},
			servers: voters("a", "b", "c"),
			failed:  map[string]time.Time{"c": ago(time.Hour)},
			want:    nil,
		},
		{
			name:    "ties in failure time break by id",
			servers: voters("a", "b", "c", "d", "e"),
			failed:  map[string]time.Time{"e": ago(time.Hour), "d": ago(time.Hour)},
			want:    []string{"d", "e"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := tc.policy
			if p.After == 0 {
				p = policy
			}
			self := tc.self
			if self == "" {
				self = "a"
			}
			got := p.ServersToRemove(self, tc.servers, tc.failed, now)
			if !slices.Equal(got, tc.want) {
				t.Errorf("ServersToRemove = %v, want %v", got, tc.want)
			}
		})
	}
}

// Whatever the input, the voters left healthy after the removals are a majority of the voters
// left, whenever they were a majority before.
func TestCleanupPolicyKeepsQuorum(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ids := []string{"a", "b", "c", "d", "e", "f", "g"}
	for n := 1; n <= len(ids); n++ {
		for mask := 0; mask < 1<<n; mask++ {
			var servers []RaftServer
			failed := map[string]time.Time{}
			for i, id := range ids[:n] {
				servers = append(servers, RaftServer{ID: id, Voter: true})
				if mask&(1<<i) != 0 && id != "a" {
					failed[id] = now.Add(-time.Duration(i+1) * time.Hour)
				}
			}
			healthy := n - len(failed)
			removed := CleanupPolicy{After: time.Minute}.ServersToRemove("a", servers, failed, now)
			left := n - len(removed)
			if len(removed) > 0 && healthy < Majority(left) {
				t.Errorf("n=%d failed=%v: removing %v leaves %d healthy of %d", n, failed, removed, healthy, left)
			}
			if healthy >= Majority(n) && len(removed) != len(failed) {
				t.Errorf("n=%d failed=%v: removed only %v with a healthy majority", n, failed, removed)
			}
			if healthy < Majority(n) && len(removed) > 0 {
				t.Errorf("n=%d failed=%v: removed %v without a healthy majority", n, failed, removed)
			}
		}
	}
}
