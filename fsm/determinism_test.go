package fsm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"

	"google.golang.org/protobuf/proto"
	"testing"

	"github.com/trent-kms/trent/fsm/fsmpb"
)

// commandGen produces a random but seeded mix of every command over small
// pools of ids, so that commands collide: most succeed, many are rejected
// (wrong state, unknown id, bad argument), and time moves far enough for
// deletions and automatic rotations to come due.
type commandGen struct {
	rng         *rand.Rand
	now         int64
	versions    uint64
	signingKeys int // SetRegionSigningKey commands generated
}

func newCommandGen(seed uint64) *commandGen {
	return &commandGen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: t0}
}

func (g *commandGen) pick(options ...string) string { return options[g.rng.IntN(len(options))] }
func (g *commandGen) chance(percent int) bool       { return g.rng.IntN(100) < percent }

func (g *commandGen) keyID() string {
	if g.chance(15) {
		return g.mrkID()
	}
	return fmt.Sprintf("key-%02d", g.rng.IntN(12))
}

// mrkID mostly returns one of four multi-region ids, sometimes a malformed
// one.
func (g *commandGen) mrkID() string {
	if g.chance(3) {
		return g.pick("mrk-xyz", "key-00", "mrk-0000000000000000000000000000000G")
	}
	return fmt.Sprintf("%s%032x", MRKPrefix, g.rng.IntN(4))
}

// region is this region (eu-1), another, or none.
func (g *commandGen) region() string { return g.pick("eu-1", "us-1", "us-1", "ap-1", "ap-1", "") }

// mrkVersions returns versions from a small pool of ids, so that shipped
// sets overlap and merges both add and find versions.
func (g *commandGen) mrkVersions() []*fsmpb.KeyVersion {
	var out []*fsmpb.KeyVersion
	seen := map[int]bool{}
	for range g.rng.IntN(3) + 1 {
		n := g.rng.IntN(8)
		if seen[n] && !g.chance(5) {
			continue
		}
		seen[n] = true
		id := bytes.Repeat([]byte{0xee}, versionIDLen)
		id[versionIDLen-1] = byte(n)
		out = append(out, &fsmpb.KeyVersion{VersionId: id, KeyToken: []byte("t"), DomainKeyId: g.pick("dk-0", "dk-0", "dk-1"),
			Pending: g.chance(20), OriginRegion: g.region(), OriginEpoch: g.rng.Uint64N(3)})
	}
	return out
}

func (g *commandGen) replicas() []*fsmpb.Replica {
	var out []*fsmpb.Replica
	for range g.rng.IntN(3) {
		out = append(out, &fsmpb.Replica{Region: g.region(), State: fsmpb.ReplicaState(g.rng.IntN(4)), AckedSeq: g.rng.Uint64N(4)})
	}
	return out
}

// sharedState fills what ApplySharedChange and ImportReplicaKey carry.
func (g *commandGen) sharedChange() *fsmpb.ApplySharedChange {
	c := &fsmpb.ApplySharedChange{
		KeyId: g.mrkID(), PrimaryRegion: g.region(), Epoch: g.rng.Uint64N(5), Seq: g.rng.Uint64N(7),
		Versions: g.mrkVersions(), Replicas: g.replicas(),
	}
	if len(c.Versions) > 0 {
		c.CurrentVersionId = c.Versions[g.rng.IntN(len(c.Versions))].GetVersionId()
	}
	if g.chance(30) {
		c.RotationEnabled, c.RotationPeriodDays, c.NextRotationTimeUnixNano = true, 90+g.rng.Int32N(20), g.now+90*day
	}
	return c
}

// grantRef returns a grant id and, mostly, the key its id says it belongs
// to, so that RemoveGrant often names a grant that exists.
func (g *commandGen) grantRef() (grantID, keyID string) {
	k := g.rng.IntN(12)
	grantID = fmt.Sprintf("grant-%02d-%d", k, g.rng.IntN(3))
	if g.chance(10) {
		return grantID, g.keyID()
	}
	return grantID, fmt.Sprintf("key-%02d", k)
}

func (g *commandGen) policy() []byte {
	switch {
	case g.chance(3):
		return nil
	case g.chance(3):
		return bytes.Repeat([]byte{' '}, maxPolicyBytes+1)
	}
	return []byte(g.pick(`{"Statement":[]}`, `{"Version":"2012-10-17"}`))
}

func (g *commandGen) grant() *fsmpb.Grant {
	id, keyID := g.grantRef()
	gr := &fsmpb.Grant{
		GrantId:           id,
		KeyId:             keyID,
		Name:              g.pick("", "", "ci", "batch"),
		GranteePrincipal:  g.pick("app", "app", "worker", ""),
		RetiringPrincipal: g.pick("", "admin"),
		IssuingPrincipal:  "admin",
	}
	for range g.rng.IntN(3) + 1 {
		gr.Operations = append(gr.Operations, g.pick("Encrypt", "Decrypt", "GenerateDataKey"))
	}
	if g.chance(3) {
		gr.Operations = nil
	}
	if g.chance(20) {
		gr.EncryptionContextEquals = map[string]string{"tenant": g.pick("a", "b")}
	}
	if g.chance(20) {
		gr.EncryptionContextSubset = map[string]string{"app": "x"}
	}
	return gr
}
func (g *commandGen) aliasName() string {
	if g.chance(5) {
		return g.pick("alias/aws/x", "no-prefix", "alias/", "alias/bad name")
	}
	return fmt.Sprintf("alias/a%d", g.rng.IntN(8))
}
func (g *commandGen) domainKeyID() string { return fmt.Sprintf("dk-%d", g.rng.IntN(4)) }
func (g *commandGen) nodeID() string {
	if g.chance(5) {
		return ""
	}
	return fmt.Sprintf("node-%d", g.rng.IntN(5))
}

func (g *commandGen) version(rotationType string) *fsmpb.KeyVersion {
	g.versions++
	id := make([]byte, versionIDLen)
	binary.BigEndian.PutUint64(id[8:], g.versions)
	switch {
	case g.chance(3):
		id = id[:8]
	case g.chance(3):
		binary.BigEndian.PutUint64(id[8:], 1+g.rng.Uint64N(g.versions)) // maybe one the key has
	}
	token := make([]byte, 40)
	for i := range token {
		token[i] = byte(g.rng.Uint32())
	}
	return &fsmpb.KeyVersion{VersionId: id, KeyToken: token, DomainKeyId: g.domainKeyID(), RotationType: rotationType}
}

func (g *commandGen) tags() map[string]string {
	tags := map[string]string{}
	for range g.rng.IntN(30) {
		tags[fmt.Sprintf("t%02d", g.rng.IntN(60))] = g.pick("", "a", "b")
	}
	return tags
}

// addReplica returns an AddReplica, now and then without the policy it
// needs, sometimes with the replica's own description and tags.
func (g *commandGen) addReplica() *fsmpb.AddReplica {
	op := &fsmpb.AddReplica{KeyId: g.mrkID(), Region: g.region(), Policy: g.policy()}
	if g.chance(30) {
		op.Description, op.Tags = g.pick("", "replica"), map[string]string{"team": g.pick("a", "b")}
	}
	return op
}

// signingKey returns a SetRegionSigningKey. The first one applied wins and
// every later one is a no-op, so the first three are each refused for a
// different reason before any can succeed.
func (g *commandGen) signingKey() *fsmpb.SetRegionSigningKey {
	op := &fsmpb.SetRegionSigningKey{Token: []byte("wrapped-signing-key"), DomainKeyId: g.domainKeyID(), PublicKey: []byte("pub")}
	g.signingKeys++
	switch {
	case g.signingKeys == 1 || g.chance(10):
		op.Token = nil
	case g.signingKeys == 2 || g.chance(10):
		op.PublicKey = nil
	case g.signingKeys == 3 || g.chance(10):
		op.DomainKeyId = "dk-9"
	}
	return op
}

func (g *commandGen) next() *fsmpb.Command {
	switch {
	case g.chance(5):
		g.now += g.rng.Int64N(200 * day)
	default:
		g.now += g.rng.Int64N(2 * day)
	}
	at := g.now
	if g.chance(1) {
		at = 0
	}
	days := func(lo, hi int32) int32 { return lo - 2 + g.rng.Int32N(hi-lo+5) } // a few out of range
	var op proto.Message
	switch g.rng.IntN(31) {
	case 0, 1:
		k := newKey(g.keyID())
		if g.chance(30) {
			k.KeyId = g.mrkID()
			k.MultiRegion = &fsmpb.MultiRegion{}
		}
		k.Description = g.pick("", "payments", "db")
		k.KeySpec = g.pick("SYMMETRIC_DEFAULT", "SYMMETRIC_DEFAULT", "HMAC_256", "RSA_2048")
		k.Versions = []*fsmpb.KeyVersion{g.version("")}
		if g.chance(20) {
			k.Tags = g.tags()
		}
		if g.chance(80) {
			k.Policy = g.policy()
		}
		op = &fsmpb.CreateKey{Key: k}
	case 2:
		op = &fsmpb.UpdateKeyDescription{KeyId: g.keyID(), Description: g.pick("x", "y", "")}
	case 3:
		op = &fsmpb.SetKeyEnabled{KeyId: g.keyID(), Enabled: g.chance(50)}
	case 4:
		op = &fsmpb.ScheduleKeyDeletion{KeyId: g.keyID(), PendingWindowDays: days(7, 30)}
	case 5:
		op = &fsmpb.CancelKeyDeletion{KeyId: g.keyID()}
	case 6:
		op = &fsmpb.DeleteKey{KeyId: g.keyID()}
	case 7:
		op = &fsmpb.SetKeyRotation{KeyId: g.keyID(), Enabled: g.chance(70), RotationPeriodDays: days(90, 100)}
	case 8:
		op = &fsmpb.RotateKey{KeyId: g.keyID(), Version: g.version(g.pick(RotationAutomatic, RotationOnDemand, RotationAutomatic, RotationOnDemand, "SOMETIMES"))}
	case 9:
		op = &fsmpb.CreateAlias{AliasName: g.aliasName(), TargetKeyId: g.keyID()}
	case 10:
		op = &fsmpb.UpdateAlias{AliasName: g.aliasName(), TargetKeyId: g.keyID()}
	case 11:
		op = &fsmpb.DeleteAlias{AliasName: g.aliasName()}
	case 12:
		op = &fsmpb.TagResource{KeyId: g.keyID(), Tags: g.tags()}
	case 13:
		op = &fsmpb.UntagResource{KeyId: g.keyID(), TagKeys: []string{fmt.Sprintf("t%02d", g.rng.IntN(60)), "absent"}}
	case 14:
		op = &fsmpb.InitRegion{Name: "eu-1", DomainKey: &fsmpb.DomainKey{Id: g.domainKeyID()}, Node: &fsmpb.Node{Id: g.nodeID()}}
	case 15:
		op = &fsmpb.AddDomainKey{DomainKey: &fsmpb.DomainKey{Id: g.domainKeyID()}, MakeActive: g.chance(50)}
	case 16:
		op = &fsmpb.RegisterNode{Node: &fsmpb.Node{Id: g.nodeID(), RaftAddr: g.pick("a:1", "b:2")}}
	case 18:
		var tokenKey []byte
		if g.chance(30) {
			tokenKey = []byte("wrapped-grant-token-key")
		}
		op = &fsmpb.CreateGrant{Grant: g.grant(), GrantTokenKey: tokenKey, GrantTokenDomainKeyId: g.domainKeyID()}
	case 19:
		id, keyID := g.grantRef()
		op = &fsmpb.RemoveGrant{KeyId: keyID, GrantId: id, Revoke: g.chance(50)}
	case 20:
		op = &fsmpb.PutKeyPolicy{KeyId: g.keyID(), Policy: g.policy()}
	case 21, 30: // twice the weight: few keys are primaries here that can take one more replica
		op = g.addReplica()
	case 22:
		c := g.sharedChange()
		k := newKey(c.KeyId)
		k.Versions = c.Versions
		k.RotationEnabled, k.RotationPeriodDays, k.NextRotationTimeUnixNano = c.RotationEnabled, c.RotationPeriodDays, c.NextRotationTimeUnixNano
		k.MultiRegion = &fsmpb.MultiRegion{PrimaryRegion: c.PrimaryRegion, Epoch: c.Epoch, AppliedSeq: c.Seq,
			CurrentVersionId: c.CurrentVersionId, Replicas: c.Replicas}
		if g.chance(5) {
			k.MultiRegion = nil
		}
		op = &fsmpb.ImportReplicaKey{Key: k}
	case 23:
		op = g.sharedChange()
	case 24:
		op = &fsmpb.AckReplica{KeyId: g.mrkID(), Region: g.region(), Epoch: 1 + g.rng.Uint64N(3), Seq: g.rng.Uint64N(6),
			Deleting: g.chance(10), LastError: g.pick("", "", "", "unreachable")}
	case 25:
		op = &fsmpb.UpdatePrimaryRegion{KeyId: g.mrkID(), NewPrimary: g.region(), Epoch: g.rng.Uint64N(6), Forced: g.chance(50)}
	case 26:
		op = &fsmpb.RemoveReplica{KeyId: g.mrkID(), Region: g.region()}
	case 27:
		op = &fsmpb.MergeKeyVersions{KeyId: g.mrkID(), Versions: g.mrkVersions()}
	case 28:
		op = g.signingKey()
	case 29:
		var key []byte
		if !g.chance(5) {
			key = []byte(g.pick("pub-a", "pub-a", "pub-b"))
		}
		op = &fsmpb.PinPeerRegion{Region: g.pick(g.region(), "sa-1"), PublicKey: key}
	case 17:
		if g.chance(10) {
			return &fsmpb.Command{TimeUnixNano: at} // no operation
		}
		op = &fsmpb.DeregisterNode{Id: g.nodeID()}
	}
	cmd := wrap(at, op)
	cmd.Principal = g.pick("", "app", "admin")
	return cmd
}

// entries returns n encoded commands, the region initialised first so most
// key commands can succeed.
func (g *commandGen) entries(t testing.TB, n int) [][]byte {
	t.Helper()
	out := make([][]byte, 0, n)
	first := wrap(g.now, &fsmpb.InitRegion{Name: "eu-1", DomainKey: &fsmpb.DomainKey{Id: "dk-0"}, Node: &fsmpb.Node{Id: "node-0"}})
	for cmd := first; len(out) < n; cmd = g.next() {
		data, err := Encode(cmd)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data)
	}
	return out
}

func TestApplyIsDeterministic(t *testing.T) {
	for seed := range uint64(4) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			entries := newCommandGen(seed).entries(t, 2000)
			a, b := New(Config{}), New(Config{})
			outcomes := map[string]map[string]int{} // op → "ok" or kind → count
			for i, data := range entries {
				index := uint64(i + 1)
				ra, rb := a.Apply(index, data).(*Result), b.Apply(index, data).(*Result)
				if fmt.Sprint(ra.Err) != fmt.Sprint(rb.Err) {
					t.Fatalf("entry %d: results differ: %v / %v", index, ra.Err, rb.Err)
				}
				op := opName(t, data)
				if outcomes[op] == nil {
					outcomes[op] = map[string]int{}
				}
				outcome := "ok"
				if ra.Err != nil {
					outcome = RejectKindName(ra.Err)
				}
				outcomes[op][outcome]++
			}
			checkInvariants(t, a)
			checkMRKInvariants(t, a)

			snapA, snapB := snapshotBytes(t, a), snapshotBytes(t, b)
			if !bytes.Equal(snapA, snapB) {
				t.Fatal("two FSMs fed the same entries have different snapshots")
			}
			c := New(Config{})
			if err := c.Restore(bytes.NewReader(snapA)); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(snapA, snapshotBytes(t, c)) {
				t.Fatal("restored FSM writes a different snapshot")
			}

			// The mix must exercise both outcomes of the commands that have them.
			for op, byOutcome := range outcomes {
				if byOutcome["ok"] == 0 && op != "InitRegion" && op != "none" {
					t.Errorf("%s never succeeded: %v", op, byOutcome)
				}
				if len(byOutcome) < 2 && op != "InitRegion" && op != "none" {
					t.Errorf("%s never rejected: %v", op, byOutcome)
				}
			}
			if testing.Verbose() {
				t.Logf("outcomes: %v; %d keys", outcomes, len(must(a.ListKeys("", 0))))
			}
		})
	}
}

func must[T any](v T, _ bool) T { return v }

func opName(t testing.TB, data []byte) string {
	cmd := new(fsmpb.Command)
	if err := proto.Unmarshal(data, cmd); err != nil {
		t.Fatal(err)
	}
	if cmd.Op == nil {
		return "none"
	}
	return string(cmd.ProtoReflect().WhichOneof(cmd.ProtoReflect().Descriptor().Oneofs().ByName("op")).Message().Name())
}
