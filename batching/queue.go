package batching

import "fmt"

// Item is one message offered to a Queue or an Emitter.
type Item[T any] struct {
	// Msg is the message handed to the send function.
	Msg T

	// Key, when not empty, names what the message is about: a newer Item
	// with the same Key supersedes this one while it is buffered. Empty keys
	// never supersede anything.
	Key string

	// Size is the message's weight against Config.MaxBatchBytes, normally
	// its encoded length in bytes. It must be >= 0; with no byte budget it
	// may be left 0.
	Size int
}

// Stats counts what a Queue (or an Emitter, through its Queue) has done since
// it was made. Counters only grow.
type Stats struct {
	// Flushes is the number of non-empty batches taken.
	Flushes uint64
	// Sent is the number of messages handed over, each iteration counted.
	Sent uint64
	// Invalidated is the number of buffered messages removed before their
	// iterations ran out, because a newer Item with the same Key replaced
	// them or Invalidate removed them.
	Invalidated uint64
	// DroppedFull is the number of Items refused with ErrFull.
	DroppedFull uint64
}

// entry is a buffered Item and its remaining iterations. Entries are recycled
// through Queue.free, so a queue in steady state does not allocate.
type entry[T any] struct {
	item Item[T]
	left int  // iterations still to go; == Queue.iterations until first taken
	dead bool // removed by Invalidate; its slot is reclaimed by Take or compact
}

// Queue is the emitter's pure core: a bounded FIFO of messages, each taken a
// fixed number of times, with keyed replacement and a byte budget per batch.
// It has no goroutines, clock or locks; it is not safe for concurrent use.
// Emitter serialises access to one.
//
// Order: messages are taken in the order they were first pushed. A message
// that replaces another by key takes over the other's position.
type Queue[T any] struct {
	iterations int
	maxPending int
	maxBytes   int

	// slots[head:] is the queue in order. Dead entries stay in place until
	// Take walks past them or compact drops them.
	slots []*entry[T]
	head  int
	live  int // entries in slots that are not dead
	dead  int // dead entries still in slots

	unsent int // live entries never taken since they were pushed or replaced
	byKey  map[string]*entry[T]
	free   []*entry[T]
	stats  Stats
}

// NewQueue returns an empty Queue governed by cfg's Iterations, MaxPending and
// MaxBatchBytes. The other fields are validated but belong to the Emitter.
func NewQueue[T any](cfg Config) (*Queue[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Queue[T]{
		iterations: cfg.Iterations,
		maxPending: cfg.MaxPending,
		maxBytes:   cfg.MaxBatchBytes,
		byKey:      make(map[string]*entry[T]),
	}, nil
}

// Push buffers it for Iterations takes. If it.Key names a buffered message,
// it replaces that message in its position and the iteration count starts
// again; a replacement is accepted even when the queue is full, since it does
// not grow it. Otherwise, when MaxPending messages are buffered, Push returns
// ErrFull. With Iterations 0, Push discards it and returns nil. A negative
// it.Size is an error and nothing is buffered.
func (q *Queue[T]) Push(it Item[T]) error {
	if it.Size < 0 {
		return fmt.Errorf("batching: Item.Size must be >= 0, got %d", it.Size)
	}
	if q.iterations == 0 {
		return nil
	}
	if it.Key != "" {
		if e, ok := q.byKey[it.Key]; ok {
			if e.left < q.iterations {
				q.unsent++
			}
			e.item = it
			e.left = q.iterations
			q.stats.Invalidated++
			return nil
		}
	}
	if q.live >= q.maxPending {
		q.stats.DroppedFull++
		return ErrFull
	}
	e := q.alloc()
	e.item = it
	e.left = q.iterations
	q.slots = append(q.slots, e)
	q.live++
	q.unsent++
	if it.Key != "" {
		q.byKey[it.Key] = e
	}
	return nil
}

// Take appends the next batch to dst and returns it. The batch is the longest
// run of buffered messages, from the front, whose sizes fit MaxBatchBytes;
// when the front message alone exceeds the budget, it is the whole batch. Each
// message taken has one iteration fewer; those with none left are dropped,
// the others keep their position. Take on an empty queue returns dst.
func (q *Queue[T]) Take(dst []T) []T {
	var (
		bytes, taken int
		w            = q.head // survivors are gathered at slots[head:w]
		i            = q.head
	)
	for ; i < len(q.slots); i++ {
		e := q.slots[i]
		if e.dead {
			q.dead--
			q.release(e)
			continue
		}
		if q.maxBytes > 0 && taken > 0 && bytes+e.item.Size > q.maxBytes {
			break
		}
		dst = append(dst, e.item.Msg)
		bytes += e.item.Size
		taken++
		if e.left == q.iterations {
			q.unsent--
		}
		e.left--
		if e.left == 0 {
			q.drop(e)
			continue
		}
		q.slots[w] = e
		w++
	}
	// Move the survivors up against the part not yet walked, so the queue
	// stays contiguous and in order, then clear the vacated slots.
	n := w - q.head
	newHead := i - n
	copy(q.slots[newHead:i], q.slots[q.head:w])
	clear(q.slots[q.head:newHead])
	q.head = newHead
	q.reclaim()

	if taken > 0 {
		q.stats.Flushes++
		q.stats.Sent += uint64(taken)
	}
	return dst
}

// Invalidate removes the buffered message with key, if any, and reports
// whether there was one.
func (q *Queue[T]) Invalidate(key string) bool {
	e, ok := q.byKey[key]
	if !ok {
		return false
	}
	if e.left == q.iterations {
		q.unsent--
	}
	delete(q.byKey, key)
	q.live--
	e.dead = true
	q.dead++
	q.stats.Invalidated++
	if q.dead > q.live {
		q.compact()
	}
	return true
}

// Clear drops every buffered message and returns how many there were.
func (q *Queue[T]) Clear() int {
	n := q.live
	for _, e := range q.slots[q.head:] {
		if !e.dead {
			q.drop(e)
		} else {
			q.release(e)
		}
	}
	clear(q.slots)
	q.slots, q.head, q.dead, q.unsent = q.slots[:0], 0, 0, 0
	return n
}

// Len returns the number of buffered messages, including those already taken
// that have iterations left (Fabric's Size).
func (q *Queue[T]) Len() int { return q.live }

// Unsent returns the number of buffered messages not yet taken since they
// were pushed or last replaced. The Emitter flushes early when it reaches
// BurstSize.
func (q *Queue[T]) Unsent() int { return q.unsent }

// Stats returns the queue's counters.
func (q *Queue[T]) Stats() Stats { return q.stats }

// drop removes a live entry for good: its key is forgotten and it is recycled.
func (q *Queue[T]) drop(e *entry[T]) {
	if e.item.Key != "" {
		delete(q.byKey, e.item.Key)
	}
	q.live--
	q.release(e)
}

func (q *Queue[T]) alloc() *entry[T] {
	if n := len(q.free); n > 0 {
		e := q.free[n-1]
		q.free = q.free[:n-1]
		return e
	}
	return new(entry[T])
}

// release zeroes e, so the queue keeps no reference to a dropped message, and
// puts it on the free list.
func (q *Queue[T]) release(e *entry[T]) {
	*e = entry[T]{}
	q.free = append(q.free, e)
}

// reclaim keeps the slot slice from creeping forward forever: once the dead
// space before head is at least half the slice, the queue is moved down.
func (q *Queue[T]) reclaim() {
	if q.head == len(q.slots) {
		q.slots, q.head = q.slots[:0], 0
		return
	}
	if q.head > len(q.slots)/2 {
		n := copy(q.slots, q.slots[q.head:])
		clear(q.slots[n:])
		q.slots, q.head = q.slots[:n], 0
	}
}

// compact drops dead entries from slots. Invalidate calls it when they
// outnumber the live ones, so their memory stays within a constant factor of
// the live entries even if Take is never called.
func (q *Queue[T]) compact() {
	w := 0
	for _, e := range q.slots[q.head:] {
		if e.dead {
			q.release(e)
			continue
		}
		q.slots[w] = e
		w++
	}
	clear(q.slots[w:])
	q.slots, q.head, q.dead = q.slots[:w], 0, 0
}
