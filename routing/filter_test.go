package routing

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
)

func newRNG(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0x5eed)) }

func member(id, org string, external bool, channels ...string) Member {
	m := Member{ID: peer.ID(id), Org: org, External: external, Alive: true, Channels: map[string]bool{}}
	for _, c := range channels {
		m.Channels[c] = true
	}
	return m
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = string(m.ID)
	}
	slices.Sort(out)
	return out
}

func TestFilters(t *testing.T) {
	v := View{
		Self:        member("self", "A", true, "c1"),
		ChannelOrgs: map[string][]string{"c1": {"A", "B"}, "c2": {"C"}},
	}
	a1 := member("a1", "A", false, "c1")
	b1 := member("b1", "B", true, "c1")
	b2 := member("b2", "B", true) // org in c1, no StateInfo
	c1 := member("c1", "C", true, "c1")
	deadA := member("deadA", "A", true, "c1")
	deadA.Alive = false
	isA := func(m Member) bool { return m.ID == "a1" }
	isB := func(m Member) bool { return m.ID == "b1" }

	tests := []struct {
		name string
		f    Filter
		want map[string]bool // member ID → admitted; members not listed must be refused
	}{
		{"All admits everyone", All(), map[string]bool{"a1": true, "b1": true, "b2": true, "c1": true, "deadA": true}},
		{"None admits no one", None(), nil},
		{"And of nothing admits everyone", And(), map[string]bool{"a1": true, "b1": true, "b2": true, "c1": true, "deadA": true}},
		{"Or of nothing admits no one", Or(), nil},
		{"And with None is None", And(All(), None()), nil},
		{"And nested with None is None", And(All(), And(All(), None())), nil},
		{"And is conjunction", And(External(), SameOrg("B")), map[string]bool{"b1": true, "b2": true}},
		{"Or is disjunction (AnyMatch)", Or(isA, isB), map[string]bool{"a1": true, "b1": true}},
		{"Or with All is All", Or(None(), All()), map[string]bool{"a1": true, "b1": true, "b2": true, "c1": true, "deadA": true}},
		{"Not inverts", Not(External()), map[string]bool{"a1": true}},
		{"Not of None is All", Not(None()), map[string]bool{"a1": true, "b1": true, "b2": true, "c1": true, "deadA": true}},
		{"SameOrg", SameOrg("A"), map[string]bool{"a1": true, "deadA": true}},
		{"SameOrg of unknown org", SameOrg("Z"), nil},
		{"OrgInChannel is org-level only", OrgInChannel(v, "c1"), map[string]bool{"a1": true, "b1": true, "b2": true, "deadA": true}},
		{"OrgInChannel of unknown channel", OrgInChannel(v, "nope"), nil},
		{"Eligible needs org, StateInfo and life", Eligible(v, "c1"), map[string]bool{"a1": true, "b1": true}},
		{"Eligible: StateInfo for a channel its org is not in", Eligible(v, "c2"), nil},
		{"External", External(), map[string]bool{"b1": true, "b2": true, "c1": true, "deadA": true}},
		{"Except", Except("a1", "c1"), map[string]bool{"b1": true, "b2": true, "deadA": true}},
		{"Except nothing", Except(), map[string]bool{"a1": true, "b1": true, "b2": true, "c1": true, "deadA": true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, m := range []Member{a1, b1, b2, c1, deadA} {
				if got := tt.f(m); got != tt.want[string(m.ID)] {
					t.Errorf("filter(%s) = %v, want %v", m.ID, got, tt.want[string(m.ID)])
				}
			}
		})
	}
}

func TestAndOrShortCircuit(t *testing.T) {
	var calls []string
	rec := func(name string, r bool) Filter {
		return func(Member) bool { calls = append(calls, name); return r }
	}
	tests := []struct {
		name string
		f    Filter
		want bool
		seq  string
	}{
		{"And stops at the first refusal", And(rec("a", true), rec("b", false), rec("c", true)), false, "a,b"},
		{"And evaluates all when all admit", And(rec("a", true), rec("b", true)), true, "a,b"},
		{"Or stops at the first acceptance", Or(rec("a", false), rec("b", true), rec("c", false)), true, "a,b"},
		{"Or evaluates all when all refuse", Or(rec("a", false), rec("b", false)), false, "a,b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls = nil
			if got := tt.f(Member{}); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			if got := strings.Join(calls, ","); got != tt.seq {
				t.Errorf("evaluated %q, want %q", got, tt.seq)
			}
		})
	}
}

func TestCombinatorsCopyTheirArguments(t *testing.T) {
	fs := []Filter{All()}
	and, or := And(fs...), Or(fs...)
	ex := []peer.ID{"x"}
	except := Except(ex...)
	fs[0], ex[0] = None(), "y"
	if !and(Member{}) || !or(Member{}) {
		t.Error("changing the caller's slice changed an And/Or built from it")
	}
	if except(Member{ID: "x"}) || !except(Member{ID: "y"}) {
		t.Error("changing the caller's slice changed an Except built from it")
	}
}

func TestFirst(t *testing.T) {
	pool := []Member{member("a", "A", false), member("b", "B", false), member("c", "B", false)}
	tests := []struct {
		name   string
		pool   []Member
		f      Filter
		want   string
		wantOK bool
	}{
		{"nil pool", nil, All(), "", false},
		{"empty pool", []Member{}, All(), "", false},
		{"select all gives the first", pool, All(), "a", true},
		{"predicate gives the first match in pool order", pool, SameOrg("B"), "b", true},
		{"no match", pool, SameOrg("Z"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := First(tt.pool, tt.f)
			if ok != tt.wantOK || string(got.ID) != tt.want {
				t.Errorf("First = (%q, %v), want (%q, %v)", string(got.ID), ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestSelectPeers(t *testing.T) {
	dead := member("dead", "A", true)
	dead.Alive = false
	pool := []Member{
		member("self", "A", true),
		member("a", "A", true),
		member("b", "A", false),
		member("c", "B", true),
		dead,
		member("", "A", true), // no ID: cannot be addressed
	}
	tests := []struct {
		name string
		k    int
		f    Filter
		want int      // result size
		only []string // when set, the result must be exactly these
	}{
		{"k larger than the pool gives every match", 10, All(), 3, []string{"a", "b", "c"}},
		{"k equal to the matches", 3, All(), 3, []string{"a", "b", "c"}},
		{"k smaller than the matches", 2, All(), 2, nil},
		{"k of one", 1, All(), 1, nil},
		{"k zero gives none", 0, All(), 0, nil},
		{"negative k gives none", -1, All(), 0, nil},
		{"filter narrows", 10, External(), 2, []string{"a", "c"}},
		{"combined filters", 10, And(External(), SameOrg("A")), 1, []string{"a"}},
		{"combined filters, k one", 1, Or(SameOrg("A"), SameOrg("B")), 1, nil},
		{"never self, even when the filter asks for it", 10, func(m Member) bool { return m.ID == "self" }, 0, nil},
		{"never dead, even when the filter asks for it", 10, func(m Member) bool { return m.ID == "dead" }, 0, nil},
		{"nothing matches gives none", 10, None(), 0, nil},
		{"nil filter gives none", 10, nil, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rng := newRNG(1)
			got := SelectPeers(tt.k, "self", pool, tt.f, rng)
			if len(got) != tt.want {
				t.Fatalf("SelectPeers returned %v, want %d peers", ids(got), tt.want)
			}
			if tt.want == 0 && got != nil {
				t.Errorf("SelectPeers returned empty non-nil %v, want nil", got)
			}
			got2 := ids(got)
			if len(slices.Compact(slices.Clone(got2))) != len(got2) {
				t.Errorf("SelectPeers returned duplicates: %v", got2)
			}
			for _, m := range got {
				if m.ID == "self" || !m.Alive || m.ID == "" || (tt.f != nil && !tt.f(m)) {
					t.Errorf("SelectPeers returned %q, which it must not", string(m.ID))
				}
			}
			if tt.only != nil && !slices.Equal(got2, tt.only) {
				t.Errorf("SelectPeers = %v, want %v", got2, tt.only)
			}
		})
	}
}

func TestViewSelectPeersExcludesSelf(t *testing.T) {
	v := View{Self: member("self", "A", true), Members: []Member{member("self", "A", true), member("a", "A", true)}}
	for seed := range uint64(20) {
		if got := ids(v.SelectPeers(5, All(), newRNG(seed))); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("seed %d: View.SelectPeers = %v, want [a]", seed, got)
		}
	}
}

func TestSelectPeersDoesNotModifyPool(t *testing.T) {
	pool := []Member{member("a", "A", true), member("b", "A", true), member("c", "A", true), member("d", "A", true)}
	before := ids(pool)
	order := func() []string {
		out := make([]string, len(pool))
		for i, m := range pool {
			out[i] = string(m.ID)
		}
		return out
	}
	SelectPeers(2, "", pool, All(), newRNG(7))
	if got := order(); !slices.Equal(got, before) {
		t.Errorf("pool reordered to %v", got)
	}
}

// TestSelectPeersUniform checks that every matching member is about equally likely to be chosen
// and non-matching ones never are. The seed is fixed, so the counts are deterministic; the bounds
// (±15% around the mean) are only loose to survive a change of generator.
func TestSelectPeersUniform(t *testing.T) {
	const n, k, trials = 10, 3, 20000
	pool := make([]Member, 0, 2*n)
	for i := range n {
		pool = append(pool, member("in"+string(rune('a'+i)), "A", true))
		pool = append(pool, member("out"+string(rune('a'+i)), "B", true))
	}
	rng := newRNG(42)
	counts := map[peer.ID]int{}
	for range trials {
		got := SelectPeers(k, "", pool, SameOrg("A"), rng)
		if len(got) != k {
			t.Fatalf("got %d peers, want %d", len(got), k)
		}
		for _, m := range got {
			counts[m.ID]++
		}
	}
	mean := float64(trials*k) / n
	for _, m := range pool {
		c := float64(counts[m.ID])
		switch {
		case m.Org == "B" && c != 0:
			t.Errorf("%s chosen %v times although the filter refuses it", string(m.ID), c)
		case m.Org == "A" && (c < 0.85*mean || c > 1.15*mean):
			t.Errorf("%s chosen %v times, want about %v", string(m.ID), c, mean)
		}
	}
}

func TestSelectPeersDeterministic(t *testing.T) {
	pool := make([]Member, 50)
	for i := range pool {
		pool[i] = member(string(rune('A'+i)), "A", true)
	}
	a := ids(SelectPeers(5, "", pool, All(), newRNG(9)))
	b := ids(SelectPeers(5, "", pool, All(), newRNG(9)))
	if !slices.Equal(a, b) {
		t.Errorf("same seed gave %v and %v", a, b)
	}
}

func TestPartition(t *testing.T) {
	even := func(i int) bool { return i%2 == 0 }
	tests := []struct {
		name          string
		in            []int
		matched, rest []int
	}{
		{"nil", nil, nil, nil},
		{"empty", []int{}, nil, nil},
		{"mixed keeps order on both sides", []int{1, 2, 3, 4, 5, 6, 7}, []int{2, 4, 6}, []int{1, 3, 5, 7}},
		{"all match", []int{2, 4}, []int{2, 4}, nil},
		{"none match", []int{1, 3}, nil, []int{1, 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := slices.Clone(tt.in)
			m, r := Partition(even, in)
			if !slices.Equal(m, tt.matched) || !slices.Equal(r, tt.rest) {
				t.Errorf("Partition = %v, %v; want %v, %v", m, r, tt.matched, tt.rest)
			}
			if !slices.Equal(in, tt.in) {
				t.Errorf("input modified to %v", in)
			}
			if len(m) > 0 && len(r) > 0 {
				// matched and rest share a backing array: appending to one must not overwrite the other.
				if grown := append(m, 100); grown[len(m)] != 100 || !slices.Equal(r, tt.rest) {
					t.Errorf("appending to matched changed rest to %v", r)
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	if got := DefaultConfig(); got != (Config{PropagatePeerNum: 3, CrossOrgPeerNum: 1}) {
		t.Errorf("DefaultConfig() = %+v", got)
	}
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"default", DefaultConfig(), ""},
		{"push off", Config{}, ""},
		{"negative PropagatePeerNum", Config{PropagatePeerNum: -1}, "PropagatePeerNum must be >= 0, got -1"},
		{"negative CrossOrgPeerNum", Config{PropagatePeerNum: 3, CrossOrgPeerNum: -2}, "CrossOrgPeerNum must be >= 0, got -2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Validate() = %v, want nil", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("Validate() = %v, want an error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKindString(t *testing.T) {
	for k, want := range map[Kind]string{KindBlock: "block", KindStateInfo: "stateinfo", KindAlive: "alive", 0: "Kind(0)", 9: "Kind(9)"} {
		if got := k.String(); got != want {
			t.Errorf("Kind(%d).String() = %q, want %q", uint8(k), got, want)
		}
	}
}
