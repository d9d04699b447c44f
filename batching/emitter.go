package batching

import (
	"errors"
	"sync"
	"time"
)

// Emitter buffers messages and hands them to a send function in batches: every
// Config.Latency, and at once when Config.BurstSize messages wait for their
// first send. Each message is handed over Config.Iterations times, in
// successive flushes, then dropped. The rules are Queue's; Emitter adds the
// clock and the goroutine.
//
// Exactly one goroutine, owned by the Emitter, calls send, and never while
// holding the Emitter's lock, so send may block, take its time, and call Add;
// while it runs no other flush happens and Add fills the buffer toward
// Config.MaxPending, which is the back-pressure a slow sender sees. The batch passed to send is only valid until send returns: the Emitter
// reuses its backing array, so copy what must outlive the call.
//
// Add, Len, Stats and Close are safe for concurrent use.
type Emitter[T any] struct {
	send      func(batch []T)
	burstSize int

	mu     sync.Mutex
	q      *Queue[T]
	closed bool

	kick      chan struct{} // buffered(1): Add asks for a burst flush
	stop      chan struct{} // closed by Close
	done      chan struct{} // closed when the flush goroutine has returned
	closeOnce sync.Once

	batch []T // owned by the flush goroutine
}

// New validates cfg and starts an Emitter that passes batches to send. With
// cfg.Iterations 0 push is disabled: no goroutine is started and Add discards
// every message.
func New[T any](cfg Config, send func(batch []T)) (*Emitter[T], error) {
	if send == nil {
		return nil, errors.New("batching: send function is nil")
	}
	q, err := NewQueue[T](cfg)
	if err != nil {
		return nil, err
	}
	e := &Emitter[T]{
		send:      send,
		burstSize: cfg.BurstSize,
		q:         q,
		kick:      make(chan struct{}, 1),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	if cfg.Iterations == 0 {
		close(e.done)
		return e, nil
	}
	go e.run(cfg.Latency)
	return e, nil
}

// Add buffers it for sending (see Queue.Push for keys and sizes). It returns
// ErrClosed after Close, ErrFull when Config.MaxPending messages are already
// buffered, and nil otherwise, including when push is disabled and the message
// is discarded. Add never waits for send.
func (e *Emitter[T]) Add(it Item[T]) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return ErrClosed
	}
	err := e.q.Push(it)
	burst := err == nil && e.q.Unsent() >= e.burstSize
	e.mu.Unlock()

	if burst {
		select {
		case e.kick <- struct{}{}:
		default: // a flush is already requested
		}
	}
	return err
}

// Close stops the flush goroutine and waits for it to return. Before
// returning, the goroutine drains the buffer: it flushes, in ordinary batches,
// until every buffered message has been handed over at least once, then drops
// the remaining iterations. So a message whose Add returned nil is sent even
// if Close follows at once. Later calls to Close wait for the same drain and
// return; Add then returns ErrClosed. Close must not be called from send.
func (e *Emitter[T]) Close() {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		close(e.stop)
	})
	<-e.done
}

// Len returns the number of buffered messages, including those already sent
// that have iterations left (Fabric's Size).
func (e *Emitter[T]) Len() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.q.Len()
}

// Stats returns the counters of the Emitter's queue.
func (e *Emitter[T]) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.q.Stats()
}

// run is the flush goroutine. A burst request is honoured only if BurstSize
// messages still wait for their first send, so a tick that got there first
// does not cause a second, smaller flush. Each request causes one flush at
// most: when the byte budget holds messages back, the rest waits for the next
// tick or Add instead of spinning.
func (e *Emitter[T]) run(period time.Duration) {
	defer close(e.done)
	ticker := time.NewTicker(period)
	defer ticker.Stop()
	for {
		select {
		case <-e.stop:
			e.drain()
			return
		case <-ticker.C:
			e.flush(0)
		case <-e.kick:
			e.flush(e.burstSize)
		}
	}
}

// flush takes one batch, if at least minUnsent messages wait for their first
// send, and hands it to send outside the lock.
func (e *Emitter[T]) flush(minUnsent int) {
	e.mu.Lock()
	if e.q.Unsent() < minUnsent {
		e.mu.Unlock()
		return
	}
	e.batch = e.q.Take(e.batch[:0])
	e.mu.Unlock()
	e.deliver()
}

// drain flushes until every buffered message has been sent once, then
// empties the queue. Add is already refused, so the queue only shrinks.
func (e *Emitter[T]) drain() {
	for {
		e.mu.Lock()
		if e.q.Unsent() == 0 {
			e.q.Clear()
			e.mu.Unlock()
			return
		}
		e.batch = e.q.Take(e.batch[:0])
		e.mu.Unlock()
		e.deliver()
	}
}

// deliver calls send with the current batch, if any, and then clears it so
// the Emitter does not keep sent messages reachable.
func (e *Emitter[T]) deliver() {
	if len(e.batch) == 0 {
		return
	}
	e.send(e.batch)
	clear(e.batch)
}
