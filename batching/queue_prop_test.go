package batching

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// modelEntry is the reference model's view of one buffered message.
type modelEntry struct {
	id, size, left int
	key            string
}

// TestQueueProperties runs random sequences of Push, Take and Invalidate
// against a Queue and checks, against an obviously correct slice model and
// directly:
//   - every message that no later same-key message replaced, and that was not
//     invalidated, is taken exactly Iterations times; a replaced one fewer;
//   - a batch is in queue order: by the push order of the slot each message
//     occupies (a replacement inherits its predecessor's slot);
//   - no batch exceeds MaxBatchBytes unless it holds a single message;
//   - the queue never holds more than MaxPending messages, and ErrFull is
//     returned exactly when a new, non-replacing message finds it full.
func TestQueueProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		iterations := rapid.IntRange(1, 4).Draw(t, "iterations")
		budget := rapid.SampledFrom([]int{0, 1, 50, 100, 250}).Draw(t, "maxBatchBytes")
		maxPending := rapid.IntRange(1, 12).Draw(t, "maxPending")
		q, err := NewQueue[int](testConfig(iterations, budget, maxPending))
		if err != nil {
			t.Fatal(err)
		}

		var (
			model      []modelEntry
			sizes      []int // by message id
			slot       []int // by message id: id of the first message pushed into its slot
			taken      []int // by message id
			superseded []bool
			fullErrs   uint64
		)
		checkBatch := func(batch []int) {
			total := 0
			for i, id := range batch {
				total += sizes[id]
				taken[id]++
				if i > 0 && slot[batch[i-1]] >= slot[id] {
					t.Fatalf("batch %v out of order: slots %d then %d", batch, slot[batch[i-1]], slot[id])
				}
			}
			if budget > 0 && total > budget && len(batch) > 1 {
				t.Fatalf("batch %v weighs %d, over the budget %d", batch, total, budget)
			}
		}
		modelTake := func() []int {
			var out []int
			bytes, kept := 0, model[:0:0]
			for i, e := range model {
				if budget > 0 && len(out) > 0 && bytes+e.size > budget {
					kept = append(kept, model[i:]...)
					break
				}
				out = append(out, e.id)
				bytes += e.size
				if e.left--; e.left > 0 {
					kept = append(kept, e)
				}
			}
			model = kept
			return out
		}

		steps := rapid.IntRange(0, 150).Draw(t, "steps")
		for range steps {
			switch rapid.IntRange(0, 9).Draw(t, "op") {
			case 0, 1, 2, 3, 4, 5: // Push
				id := len(sizes)
				key := rapid.SampledFrom([]string{"", "", "k0", "k1", "k2", "k3"}).Draw(t, "key")
				size := rapid.IntRange(0, 120).Draw(t, "size")
				sizes, slot, taken, superseded = append(sizes, size), append(slot, id), append(taken, 0), append(superseded, false)

				i := slices.IndexFunc(model, func(e modelEntry) bool { return key != "" && e.key == key })
				err := q.Push(Item[int]{Msg: id, Key: key, Size: size})
				switch {
				case i >= 0:
					if err != nil {
						t.Fatalf("replacing Push = %v", err)
					}
					superseded[model[i].id] = true
					slot[id] = slot[model[i].id]
					model[i] = modelEntry{id: id, size: size, left: iterations, key: key}
				case len(model) >= maxPending:
					if !errors.Is(err, ErrFull) {
						t.Fatalf("Push into a full queue = %v, want ErrFull", err)
					}
					fullErrs++
					superseded[id] = true // never buffered
				default:
					if err != nil {
						t.Fatalf("Push = %v", err)
					}
					model = append(model, modelEntry{id: id, size: size, left: iterations, key: key})
				}
			case 6, 7, 8: // Take
				got := q.Take(nil)
				want := modelTake()
				if !slices.Equal(got, want) {
					t.Fatalf("Take = %v, model says %v", got, want)
				}
				checkBatch(got)
			case 9: // Invalidate
				key := fmt.Sprintf("k%d", rapid.IntRange(0, 3).Draw(t, "invalidate"))
				i := slices.IndexFunc(model, func(e modelEntry) bool { return e.key == key })
				if got := q.Invalidate(key); got != (i >= 0) {
					t.Fatalf("Invalidate(%q) = %v, model says %v", key, got, i >= 0)
				}
				if i >= 0 {
					superseded[model[i].id] = true
					model = slices.Delete(model, i, i+1)
				}
			}
			if q.Len() != len(model) || q.Len() > maxPending {
				t.Fatalf("Len() = %d, model holds %d, MaxPending %d", q.Len(), len(model), maxPending)
			}
			unsent := 0
			for _, e := range model {
				if e.left == iterations {
					unsent++
				}
			}
			if q.Unsent() != unsent {
				t.Fatalf("Unsent() = %d, model says %d", q.Unsent(), unsent)
			}
		}

		for q.Len() > 0 {
			batch := q.Take(nil)
			if len(batch) == 0 {
				t.Fatalf("Take made no progress with Len() = %d", q.Len())
			}
			checkBatch(batch)
		}

		var sent uint64
		for id, n := range taken {
			sent += uint64(n)
			switch {
			case !superseded[id] && n != iterations:
				t.Fatalf("message %d taken %d times, want %d", id, n, iterations)
			case superseded[id] && n >= iterations:
				t.Fatalf("superseded message %d taken %d times, want fewer than %d", id, n, iterations)
			}
		}
		if s := q.Stats(); s.Sent != sent || s.DroppedFull != fullErrs {
			t.Fatalf("Stats() = %+v, want Sent %d and DroppedFull %d", s, sent, fullErrs)
		}
	})
}
