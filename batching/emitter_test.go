package batching

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

// recorder is a send function that keeps a copy of every batch and the
// (virtual) time it arrived.
type recorder struct {
	mu      sync.Mutex
	start   time.Time
	batches [][]int
	at      []time.Duration
}

func newRecorder() *recorder { return &recorder{start: time.Now()} }

func (r *recorder) send(batch []int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, slices.Clone(batch))
	r.at = append(r.at, time.Since(r.start))
}

func (r *recorder) got() [][]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches)
}

func (r *recorder) times() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at)
}

// counts returns how often each message was handed over.
func (r *recorder) counts() map[int]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make(map[int]int)
	for _, b := range r.batches {
		for _, m := range b {
			c[m]++
		}
	}
	return c
}

func emitterConfig(iterations, burst int, latency time.Duration) Config {
	c := DefaultConfig()
	c.Iterations, c.BurstSize, c.Latency = iterations, burst, latency
	return c
}

func newTestEmitter(t *testing.T, cfg Config, send func([]int)) *Emitter[int] {
	t.Helper()
	e, err := New(cfg, send)
	if err != nil {
		t.Fatalf("New(%+v): %v", cfg, err)
	}
	return e
}

func mustAdd(t *testing.T, e *Emitter[int], it Item[int]) {
	t.Helper()
	if err := e.Add(it); err != nil {
		t.Fatalf("Add(%+v) = %v", it, err)
	}
}

func msg(m int) Item[int] { return Item[int]{Msg: m} }

func equalBatches(a, b [][]int) bool { return slices.EqualFunc(a, b, slices.Equal) }

// Fabric's TestBatchingEmitterAddAndSize: nothing is sent before a burst or a
// tick, and Len counts what is buffered.
func TestEmitterAddAndSize(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(1, 10, time.Second), r.send)
		defer e.Close()
		for m := 1; m <= 3; m++ {
			mustAdd(t, e, msg(m))
		}
		synctest.Wait()
		if e.Len() != 3 {
			t.Fatalf("Len() = %d, want 3", e.Len())
		}
		if got := r.got(); len(got) != 0 {
			t.Fatalf("sent %v before any burst or tick", got)
		}
	})
}

// Fabric's TestBatchingEmitterStop: after Close nothing more is sent, though
// the message still had iterations left.
func TestEmitterStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(10, 1, 100*time.Millisecond), r.send)
		mustAdd(t, e, msg(1))              // burst: sent at once
		time.Sleep(150 * time.Millisecond) // one tick, at 100ms
		synctest.Wait()
		if n := len(r.got()); n != 2 {
			t.Fatalf("%d sends before Close, want 2 (burst and one tick)", n)
		}
		e.Close()
		time.Sleep(time.Second)
		if n := len(r.got()); n != 2 {
			t.Fatalf("%d sends after Close and 1s, want still 2", n)
		}
		if e.Len() != 0 {
			t.Fatalf("Len() = %d after Close, want 0", e.Len())
		}
	})
}

// Fabric's TestBatchingEmitterExpiration: a message is sent exactly Iterations
// times, once per flush, then dropped.
func TestEmitterExpiration(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(10, 1, 10*time.Millisecond), r.send)
		defer e.Close()
		mustAdd(t, e, msg(1))
		time.Sleep(500 * time.Millisecond)
		synctest.Wait()

		want := slices.Repeat([][]int{{1}}, 10)
		if got := r.got(); !equalBatches(got, want) {
			t.Fatalf("batches = %v, want %v", got, want)
		}
		for i, at := range r.times() { // the burst at 0, then one per tick
			if want := time.Duration(i) * 10 * time.Millisecond; at != want {
				t.Errorf("send %d at %v, want %v", i, at, want)
			}
		}
		if e.Len() != 0 {
			t.Fatalf("Len() = %d, want 0: the message should be dropped after its iterations", e.Len())
		}
	})
}

// Fabric's TestBatchingEmitterCounter: iterations are counted per message, so
// a message added later gets its full count and older ones have been sent
// more often.
func TestEmitterCounter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(5, 100, 500*time.Millisecond), r.send)
		for m := 1; m <= 5; m++ {
			mustAdd(t, e, msg(m))
			if m < 5 {
				time.Sleep(600 * time.Millisecond)
			}
		}
		// Added at 0, 600, 1200, 1800, 2400ms; ticks at 500, 1000, 1500, 2000ms.
		synctest.Wait()
		want := map[int]int{1: 4, 2: 3, 3: 2, 4: 1}
		if got := r.counts(); !maps.Equal(got, want) {
			t.Fatalf("sends per message at 2.4s = %v, want %v", got, want)
		}
		e.Close() // one last batch, since 5 was never sent
		want = map[int]int{1: 5, 2: 4, 3: 3, 4: 2, 5: 1}
		if got := r.counts(); !maps.Equal(got, want) {
			t.Fatalf("sends per message after Close = %v, want %v", got, want)
		}
	})
}

// Fabric's TestBatchingEmitterBurstSizeCap: BurstSize messages flush at once,
// long before the period.
func TestEmitterBurstSizeCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(1, 10, 800*time.Millisecond), r.send)
		defer e.Close()
		start := time.Now()
		for m := range 50 {
			mustAdd(t, e, msg(m))
			synctest.Wait() // let a burst flush run, as Fabric's synchronous emit would
		}
		if time.Since(start) != 0 {
			t.Fatalf("virtual time moved by %v", time.Since(start))
		}
		var want [][]int
		for b := range 5 {
			want = append(want, []int{10 * b, 10*b + 1, 10*b + 2, 10*b + 3, 10*b + 4, 10*b + 5, 10*b + 6, 10*b + 7, 10*b + 8, 10*b + 9})
		}
		if got := r.got(); !equalBatches(got, want) {
			t.Fatalf("batches = %v, want five bursts of ten", got)
		}
	})
}

// TestEmitterLatency: below the burst size a message waits for the next tick,
// and the tick sends everything buffered, in order.
func TestEmitterLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(1, 10, 10*time.Millisecond), r.send)
		defer e.Close()
		time.Sleep(3 * time.Millisecond)
		mustAdd(t, e, msg(1))
		mustAdd(t, e, msg(2))
		time.Sleep(20 * time.Millisecond)
		synctest.Wait()
		if got, at := r.got(), r.times(); !equalBatches(got, [][]int{{1, 2}}) || at[0] != 10*time.Millisecond {
			t.Fatalf("batches = %v at %v, want [[1 2]] at 10ms", got, at)
		}
		if s := e.Stats(); s.Flushes != 1 || s.Sent != 2 {
			t.Fatalf("Stats() = %+v, want 1 flush and 2 sent (empty ticks are not flushes)", s)
		}
	})
}

func TestEmitterInvalidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		e := newTestEmitter(t, emitterConfig(2, 10, 10*time.Millisecond), r.send)
		defer e.Close()
		mustAdd(t, e, Item[int]{Msg: 1, Key: "peer-a/ch"})
		mustAdd(t, e, Item[int]{Msg: 2})
		time.Sleep(15 * time.Millisecond) // tick at 10ms: [1 2]
		mustAdd(t, e, Item[int]{Msg: 3, Key: "peer-a/ch"})
		time.Sleep(30 * time.Millisecond)
		synctest.Wait()
		want := [][]int{{1, 2}, {3, 2}, {3}}
		if got := r.got(); !equalBatches(got, want) {
			t.Fatalf("batches = %v, want %v: 3 replaces 1 in place with fresh iterations", got, want)
		}
		if s := e.Stats(); s.Invalidated != 1 {
			t.Fatalf("Stats().Invalidated = %d, want 1", s.Invalidated)
		}
	})
}

func TestEmitterByteBudget(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
		want  [][]int
	}{
		{"splits by budget", []int{40, 40, 40, 40, 40}, [][]int{{0, 1}, {2, 3}, {4}}},
		{"oversized goes alone", []int{40, 150, 40}, [][]int{{0}, {1}, {2}}},
		{"fits exactly", []int{60, 40, 1}, [][]int{{0, 1}, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				r := newRecorder()
				cfg := emitterConfig(1, 10, 10*time.Millisecond)
				cfg.MaxBatchBytes = 100
				e := newTestEmitter(t, cfg, r.send)
				defer e.Close()
				for m, size := range tt.sizes {
					mustAdd(t, e, Item[int]{Msg: m, Size: size})
				}
				time.Sleep(time.Duration(len(tt.want))*10*time.Millisecond + time.Millisecond)
				synctest.Wait()
				if got := r.got(); !equalBatches(got, tt.want) {
					t.Fatalf("batches = %v, want %v, one per tick", got, tt.want)
				}
				for i, at := range r.times() {
					if want := time.Duration(i+1) * 10 * time.Millisecond; at != want {
						t.Errorf("batch %d at %v, want %v", i, at, want)
					}
				}
			})
		})
	}
}

// TestEmitterBudgetDoesNotSpin: when the byte budget, not the burst size,
// holds messages back, a burst request causes one flush, not a loop; the rest
// goes out on later ticks. A spinning flush goroutine would also keep
// synctest.Wait from returning.
func TestEmitterBudgetDoesNotSpin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRecorder()
		cfg := emitterConfig(3, 1, time.Second)
		cfg.MaxBatchBytes = 10
		e := newTestEmitter(t, cfg, r.send)
		defer e.Close()
		for m := range 3 {
			mustAdd(t, e, Item[int]{Msg: m, Size: 10})
			synctest.Wait()
		}
		if s := e.Stats(); s.Flushes != 3 {
			t.Fatalf("%d flushes after 3 Adds, want 3: one per burst request", s.Flushes)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		want := [][]int{{0}, {0}, {0}, {1}, {1}, {1}, {2}, {2}, {2}}
		if got := r.got(); !equalBatches(got, want) {
			t.Fatalf("batches = %v, want %v", got, want)
		}
		if s := e.Stats(); s.Flushes != 9 {
			t.Fatalf("%d flushes, want 9: idle ticks must not flush", s.Flushes)
		}
	})
}

// TestEmitterFull: while send is busy the buffer fills to MaxPending, Add
// reports ErrFull, and replacements by key are still accepted. Add returning
// at all while send blocks shows that send runs outside the lock.
func TestEmitterFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		r := newRecorder()
		cfg := emitterConfig(1, 2, time.Second)
		cfg.MaxPending = 2
		e := newTestEmitter(t, cfg, func(b []int) {
			r.send(b)
			<-release
		})
		mustAdd(t, e, msg(1))
		mustAdd(t, e, msg(2)) // burst: the goroutine takes [1 2] and blocks in send
		synctest.Wait()
		mustAdd(t, e, msg(3))
		mustAdd(t, e, Item[int]{Msg: 4, Key: "k"})
		if err := e.Add(msg(5)); !errors.Is(err, ErrFull) {
			t.Fatalf("Add to a full emitter = %v, want ErrFull", err)
		}
		if err := e.Add(Item[int]{Msg: 6, Key: "k"}); err != nil {
			t.Fatalf("replacing Add to a full emitter = %v, want nil", err)
		}
		if e.Len() != 2 {
			t.Fatalf("Len() = %d, want 2 (MaxPending)", e.Len())
		}
		close(release)
		e.Close()
		want := [][]int{{1, 2}, {3, 6}}
		if got := r.got(); !equalBatches(got, want) {
			t.Fatalf("batches = %v, want %v", got, want)
		}
		if s := e.Stats(); s.DroppedFull != 1 || s.Invalidated != 1 || s.Sent != 4 {
			t.Fatalf("Stats() = %+v, want DroppedFull 1, Invalidated 1, Sent 4", s)
		}
	})
}

func TestEmitterClose(t *testing.T) {
	t.Run("flushes what is buffered", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			e := newTestEmitter(t, emitterConfig(1, 10, time.Hour), r.send)
			for m := range 3 {
				mustAdd(t, e, msg(m))
			}
			e.Close()
			if got := r.got(); !equalBatches(got, [][]int{{0, 1, 2}}) {
				t.Fatalf("batches = %v, want [[0 1 2]] from the final flush", got)
			}
			if e.Len() != 0 {
				t.Fatalf("Len() = %d after Close, want 0", e.Len())
			}
		})
	})
	t.Run("final flush respects the byte budget", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			cfg := emitterConfig(1, 10, time.Hour)
			cfg.MaxBatchBytes = 100
			e := newTestEmitter(t, cfg, r.send)
			for m := range 5 {
				mustAdd(t, e, Item[int]{Msg: m, Size: 40})
			}
			e.Close()
			if got := r.got(); !equalBatches(got, [][]int{{0, 1}, {2, 3}, {4}}) {
				t.Fatalf("batches = %v, want [[0 1] [2 3] [4]]", got)
			}
		})
	})
	t.Run("final flush sends each message once more at most", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			e := newTestEmitter(t, emitterConfig(3, 10, 10*time.Millisecond), r.send)
			mustAdd(t, e, msg(1))
			time.Sleep(15 * time.Millisecond) // 1 sent once, two iterations left
			mustAdd(t, e, msg(2))
			e.Close()
			if got := r.got(); !equalBatches(got, [][]int{{1}, {1, 2}}) {
				t.Fatalf("batches = %v, want [[1] [1 2]]: the drain stops once all were sent", got)
			}
		})
	})
	t.Run("nothing buffered, nothing sent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			e := newTestEmitter(t, emitterConfig(1, 10, 10*time.Millisecond), r.send)
			e.Close()
			if got := r.got(); len(got) != 0 {
				t.Fatalf("batches = %v, want none", got)
			}
		})
	})
	t.Run("idempotent and concurrent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			e := newTestEmitter(t, emitterConfig(1, 10, 10*time.Millisecond), r.send)
			mustAdd(t, e, msg(1))
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(e.Close)
			}
			wg.Wait()
			e.Close()
			if got := r.got(); !equalBatches(got, [][]int{{1}}) {
				t.Fatalf("batches = %v, want [[1]] exactly once", got)
			}
		})
	})
	t.Run("Add after Close", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r := newRecorder()
			e := newTestEmitter(t, emitterConfig(1, 1, 10*time.Millisecond), r.send)
			e.Close()
			if err := e.Add(msg(1)); !errors.Is(err, ErrClosed) {
				t.Fatalf("Add after Close = %v, want ErrClosed", err)
			}
			time.Sleep(time.Second)
			if got := r.got(); len(got) != 0 || e.Len() != 0 {
				t.Fatalf("batches = %v, Len() = %d after Add on a closed emitter, want nothing", got, e.Len())
			}
		})
	})
	t.Run("no goroutine left", func(t *testing.T) {
		e := newTestEmitter(t, DefaultConfig(), func([]int) {})
		mustAdd(t, e, msg(1))
		e.Close()
		goleak.VerifyNone(t)
	})
}

// TestEmitterIterationsZero: push disabled drops every message and starts no
// goroutine.
func TestEmitterIterationsZero(t *testing.T) {
	called := false
	e := newTestEmitter(t, emitterConfig(0, 10, 10*time.Millisecond), func([]int) { called = true })
	goleak.VerifyNone(t) // before Close: nothing was started
	for m := range 20 {
		if err := e.Add(msg(m)); err != nil {
			t.Fatalf("Add with push disabled = %v, want nil", err)
		}
	}
	if e.Len() != 0 {
		t.Fatalf("Len() = %d, want 0", e.Len())
	}
	e.Close()
	e.Close()
	if called {
		t.Fatal("send was called with push disabled")
	}
	if err := e.Add(msg(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v, want ErrClosed", err)
	}
}

// TestEmitterSendMayUseEmitter: send runs outside the lock, so it may call
// Add, Len and Stats without deadlocking.
func TestEmitterSendMayUseEmitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			e     *Emitter[int]
			mu    sync.Mutex
			batch [][]int
		)
		e = newTestEmitter(t, emitterConfig(1, 1, time.Hour), func(b []int) {
			mu.Lock()
			batch = append(batch, slices.Clone(b))
			mu.Unlock()
			_ = e.Len()
			_ = e.Stats()
			if b[0] < 3 {
				if err := e.Add(msg(b[0] + 1)); err != nil {
					t.Errorf("Add from send = %v", err)
				}
			}
		})
		mustAdd(t, e, msg(0))
		synctest.Wait()
		e.Close()
		mu.Lock()
		defer mu.Unlock()
		if !equalBatches(batch, [][]int{{0}, {1}, {2}, {3}}) {
			t.Fatalf("batches = %v, want [[0] [1] [2] [3]]", batch)
		}
	})
}

// TestEmitterConcurrentAdd adds from several goroutines in real time: every
// message is sent exactly once and each producer's order is kept.
func TestEmitterConcurrentAdd(t *testing.T) {
	const producers, perProducer = 4, 2000
	r := newRecorder()
	cfg := DefaultConfig()
	cfg.MaxPending = producers * perProducer
	e := newTestEmitter(t, cfg, r.send)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				if err := e.Add(msg(p*perProducer + i)); err != nil {
					t.Errorf("Add = %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	e.Close()

	last := make([]int, producers)
	for p := range last {
		last[p] = p*perProducer - 1
	}
	seen := 0
	for _, b := range r.got() {
		for _, m := range b {
			p := m / perProducer
			if m != last[p]+1 {
				t.Fatalf("producer %d: got %d after %d", p, m, last[p])
			}
			last[p] = m
			seen++
		}
	}
	if seen != producers*perProducer {
		t.Fatalf("sent %d messages, want %d", seen, producers*perProducer)
	}
}

func TestNewRejects(t *testing.T) {
	bad := DefaultConfig()
	bad.BurstSize = 0
	tests := []struct {
		name string
		cfg  Config
		send func([]int)
	}{
		{"nil send", DefaultConfig(), nil},
		{"invalid config", bad, func([]int) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if e, err := New(tt.cfg, tt.send); err == nil {
				e.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}
