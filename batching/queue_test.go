package batching

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

// testConfig is DefaultConfig with the queue's three knobs set.
func testConfig(iterations, maxBatchBytes, maxPending int) Config {
	c := DefaultConfig()
	c.Iterations = iterations
	c.MaxBatchBytes = maxBatchBytes
	c.MaxPending = maxPending
	c.BurstSize = min(c.BurstSize, maxPending)
	return c
}

func newTestQueue(t testing.TB, cfg Config) *Queue[string] {
	t.Helper()
	q, err := NewQueue[string](cfg)
	if err != nil {
		t.Fatalf("NewQueue(%+v): %v", cfg, err)
	}
	return q
}

// takeAll takes batches until the queue is empty. It fails the test rather
// than loop forever if a Take makes no progress.
func takeAll(t testing.TB, q *Queue[string]) [][]string {
	t.Helper()
	var batches [][]string
	for q.Len() > 0 {
		b := q.Take(nil)
		if len(b) == 0 {
			t.Fatalf("Take returned nothing with Len() = %d", q.Len())
		}
		batches = append(batches, b)
	}
	return batches
}

func item(msg string, size int) Item[string] { return Item[string]{Msg: msg, Size: size} }

func keyed(msg, key string) Item[string] { return Item[string]{Msg: msg, Key: key} }

func TestQueueBatches(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		items []Item[string]
		want  [][]string // successive Takes until the queue is empty
	}{
		{
			name:  "one iteration: everything in one batch, in order",
			cfg:   testConfig(1, 0, 100),
			items: []Item[string]{item("a", 0), item("b", 0), item("c", 0)},
			want:  [][]string{{"a", "b", "c"}},
		},
		{
			name:  "three iterations: every message in three successive batches",
			cfg:   testConfig(3, 0, 100),
			items: []Item[string]{item("a", 0), item("b", 0)},
			want:  [][]string{{"a", "b"}, {"a", "b"}, {"a", "b"}},
		},
		{
			name:  "a keyed message replaces its predecessor in place",
			cfg:   testConfig(1, 0, 100),
			items: []Item[string]{keyed("a1", "k"), keyed("b", ""), keyed("a2", "k")},
			want:  [][]string{{"a2", "b"}},
		},
		{
			name:  "empty keys never replace",
			cfg:   testConfig(1, 0, 100),
			items: []Item[string]{keyed("a", ""), keyed("b", "")},
			want:  [][]string{{"a", "b"}},
		},
		{
			name:  "distinct keys coexist",
			cfg:   testConfig(1, 0, 100),
			items: []Item[string]{keyed("a", "k1"), keyed("b", "k2")},
			want:  [][]string{{"a", "b"}},
		},
		{
			name:  "byte budget splits batches without reordering",
			cfg:   testConfig(1, 100, 100),
			items: []Item[string]{item("a", 40), item("b", 40), item("c", 40), item("d", 40), item("e", 40)},
			want:  [][]string{{"a", "b"}, {"c", "d"}, {"e"}},
		},
		{
			name:  "messages that fill the budget exactly share a batch",
			cfg:   testConfig(1, 100, 100),
			items: []Item[string]{item("a", 50), item("b", 50), item("c", 1)},
			want:  [][]string{{"a", "b"}, {"c"}},
		},
		{
			name:  "an oversized message goes alone",
			cfg:   testConfig(1, 100, 100),
			items: []Item[string]{item("a", 40), item("big", 150), item("c", 40)},
			want:  [][]string{{"a"}, {"big"}, {"c"}},
		},
		{
			name:  "an oversized message at the front goes alone",
			cfg:   testConfig(1, 100, 100),
			items: []Item[string]{item("big", 150), item("b", 10)},
			want:  [][]string{{"big"}, {"b"}},
		},
		{
			name:  "zero-size messages always fit",
			cfg:   testConfig(1, 10, 100),
			items: []Item[string]{item("a", 10), item("b", 0), item("c", 0)},
			want:  [][]string{{"a", "b", "c"}},
		},
		{
			name:  "the budget holds later messages behind repeated ones",
			cfg:   testConfig(2, 100, 100),
			items: []Item[string]{item("a", 60), item("b", 60)},
			want:  [][]string{{"a"}, {"a"}, {"b"}, {"b"}},
		},
		{
			name:  "iterations 0 discards everything",
			cfg:   testConfig(0, 0, 100),
			items: []Item[string]{item("a", 0), keyed("b", "k")},
			want:  nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newTestQueue(t, tt.cfg)
			for _, it := range tt.items {
				if err := q.Push(it); err != nil {
					t.Fatalf("Push(%+v) = %v", it, err)
				}
			}
			got := takeAll(t, q)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Fatalf("batches = %q, want %q", got, tt.want)
			}
			if b := q.Take(nil); len(b) != 0 {
				t.Fatalf("Take on an empty queue = %q, want nothing", b)
			}
		})
	}
}

func TestQueueReplacementResetsIterations(t *testing.T) {
	q := newTestQueue(t, testConfig(3, 0, 100))
	mustPush(t, q, keyed("v1", "k"))
	mustPush(t, q, keyed("x", ""))
	if got := q.Take(nil); !slices.Equal(got, []string{"v1", "x"}) {
		t.Fatalf("first Take = %q", got)
	}
	if q.Unsent() != 0 {
		t.Fatalf("Unsent() = %d after a full Take, want 0", q.Unsent())
	}
	mustPush(t, q, keyed("v2", "k")) // replaces v1 after one of its three iterations
	if q.Unsent() != 1 || q.Len() != 2 {
		t.Fatalf("after replacement Unsent() = %d, Len() = %d, want 1, 2", q.Unsent(), q.Len())
	}
	want := [][]string{{"v2", "x"}, {"v2", "x"}, {"v2"}}
	if got := takeAll(t, q); !slices.EqualFunc(got, want, slices.Equal) {
		t.Fatalf("batches = %q, want %q: v2 keeps v1's place and gets all three iterations", got, want)
	}
	if s := q.Stats(); s.Invalidated != 1 {
		t.Fatalf("Stats().Invalidated = %d, want 1", s.Invalidated)
	}
}

func TestQueueKeyAfterExpiryIsNew(t *testing.T) {
	q := newTestQueue(t, testConfig(1, 0, 100))
	mustPush(t, q, keyed("a", "k"))
	mustPush(t, q, keyed("x", ""))
	q.Take(nil) // a and x are done; k is forgotten
	mustPush(t, q, keyed("y", ""))
	mustPush(t, q, keyed("b", "k"))
	if got := q.Take(nil); !slices.Equal(got, []string{"y", "b"}) {
		t.Fatalf("Take = %q, want [y b]: a key whose message expired starts a new entry at the end", got)
	}
	if s := q.Stats(); s.Invalidated != 0 {
		t.Fatalf("Stats().Invalidated = %d, want 0", s.Invalidated)
	}
}

func TestQueueFull(t *testing.T) {
	q := newTestQueue(t, testConfig(1, 0, 2))
	mustPush(t, q, item("a", 0))
	mustPush(t, q, keyed("b", "k"))
	if err := q.Push(item("c", 0)); !errors.Is(err, ErrFull) {
		t.Fatalf("Push beyond MaxPending = %v, want ErrFull", err)
	}
	if err := q.Push(keyed("b2", "k")); err != nil {
		t.Fatalf("a replacement when full = %v, want nil: it does not grow the queue", err)
	}
	if q.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", q.Len())
	}
	if got := q.Take(nil); !slices.Equal(got, []string{"a", "b2"}) {
		t.Fatalf("Take = %q, want [a b2]", got)
	}
	mustPush(t, q, item("d", 0)) // room again
	s := q.Stats()
	if s.DroppedFull != 1 || s.Invalidated != 1 || s.Flushes != 1 || s.Sent != 2 {
		t.Fatalf("Stats() = %+v, want DroppedFull 1, Invalidated 1, Flushes 1, Sent 2", s)
	}
}

func TestQueueInvalidate(t *testing.T) {
	q := newTestQueue(t, testConfig(2, 0, 100))
	mustPush(t, q, keyed("a", "ka"))
	mustPush(t, q, keyed("b", "kb"))
	mustPush(t, q, keyed("c", "kc"))
	q.Take(nil) // all three have one iteration left
	mustPush(t, q, keyed("d", "kd"))

	if !q.Invalidate("kb") {
		t.Fatal(`Invalidate("kb") = false, want true`)
	}
	if !q.Invalidate("kd") {
		t.Fatal(`Invalidate("kd") = false, want true`)
	}
	for _, key := range []string{"kb", "unknown", ""} {
		if q.Invalidate(key) {
			t.Fatalf("Invalidate(%q) = true, want false", key)
		}
	}
	if q.Len() != 2 || q.Unsent() != 0 {
		t.Fatalf("Len() = %d, Unsent() = %d, want 2, 0", q.Len(), q.Unsent())
	}
	if got := takeAll(t, q); !slices.EqualFunc(got, [][]string{{"a", "c"}}, slices.Equal) {
		t.Fatalf("batches = %q, want [[a c]]", got)
	}
	mustPush(t, q, keyed("b2", "kb")) // kb is free again: a new entry
	if got := q.Take(nil); !slices.Equal(got, []string{"b2"}) {
		t.Fatalf("Take = %q, want [b2]", got)
	}
	if s := q.Stats(); s.Invalidated != 2 {
		t.Fatalf("Stats().Invalidated = %d, want 2", s.Invalidated)
	}
}

// TestQueueInvalidateCompacts removes most of a queue without taking, which
// makes the queue drop dead slots, and checks that order survives it.
func TestQueueInvalidateCompacts(t *testing.T) {
	q := newTestQueue(t, testConfig(1, 0, 1000))
	var want []string
	for i := range 100 {
		msg := fmt.Sprint(i)
		mustPush(t, q, keyed(msg, msg))
		if i%10 == 0 {
			want = append(want, msg)
		}
	}
	for i := range 100 {
		if i%10 != 0 {
			q.Invalidate(fmt.Sprint(i))
		}
	}
	if len(q.slots)-q.head > 2*q.Len() {
		t.Fatalf("%d slots hold %d live messages: dead slots were not compacted", len(q.slots)-q.head, q.Len())
	}
	if got := q.Take(nil); !slices.Equal(got, want) {
		t.Fatalf("Take = %q, want %q", got, want)
	}
}

func TestQueueClear(t *testing.T) {
	q := newTestQueue(t, testConfig(2, 0, 100))
	mustPush(t, q, keyed("a", "k"))
	mustPush(t, q, keyed("b", "kb"))
	q.Invalidate("kb")
	mustPush(t, q, item("c", 0))
	if n := q.Clear(); n != 2 {
		t.Fatalf("Clear() = %d, want 2", n)
	}
	if q.Len() != 0 || q.Unsent() != 0 || len(q.Take(nil)) != 0 {
		t.Fatalf("after Clear: Len() = %d, Unsent() = %d, want an empty queue", q.Len(), q.Unsent())
	}
	mustPush(t, q, keyed("a2", "k")) // the key was forgotten: a new entry
	if got := q.Take(nil); !slices.Equal(got, []string{"a2"}) {
		t.Fatalf("Take = %q, want [a2]", got)
	}
}

func TestQueueRejectsNegativeSize(t *testing.T) {
	q := newTestQueue(t, testConfig(1, 100, 100))
	err := q.Push(item("a", -1))
	if err == nil || q.Len() != 0 {
		t.Fatalf("Push(size -1) = %v with Len() = %d, want an error and nothing buffered", err, q.Len())
	}
}

func TestNewQueueRejectsInvalidConfig(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MaxPending = 0
	if q, err := NewQueue[string](cfg); err == nil {
		t.Fatalf("NewQueue(MaxPending 0) = %v, nil; want an error", q)
	}
}

// TestQueueReleasesMessages checks that the queue keeps no reference to a
// message it dropped, so a large message is not kept alive by a recycled
// entry.
func TestQueueReleasesMessages(t *testing.T) {
	q, err := NewQueue[*[]byte](testConfig(1, 0, 100))
	if err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, 1024)
	if err := q.Push(Item[*[]byte]{Msg: &msg}); err != nil {
		t.Fatal(err)
	}
	q.Take(nil)
	for _, e := range q.free {
		if e.item.Msg != nil {
			t.Fatal("a recycled entry still references its message")
		}
	}
	if len(q.free) != 1 {
		t.Fatalf("free list holds %d entries, want 1", len(q.free))
	}
}

func mustPush(t testing.TB, q *Queue[string], it Item[string]) {
	t.Helper()
	if err := q.Push(it); err != nil {
		t.Fatalf("Push(%+v) = %v", it, err)
	}
}
