package tree

import (
	"container/heap"
	"time"
)

// timer is a missing-block deadline. It is stale once its entry is gone, was replaced, or was
// rescheduled; stale timers are skipped when popped and swept by compactTimers.
type timer struct {
	at time.Time
	t  *tree
	e  *missing
}

func (tm timer) live() bool {
	return !tm.t.dropped && tm.t.missing[tm.e.num] == tm.e && tm.e.deadline.Equal(tm.at)
}

// timerHeap is a min-heap of timers by deadline.
type timerHeap []timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timerHeap) Push(x any)        { *h = append(*h, x.(timer)) }
func (h *timerHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	old[len(old)-1] = timer{}
	*h = old[:len(old)-1]
	return x
}

func (h *timerHeap) push(tm timer) { heap.Push(h, tm) }
func (h *timerHeap) pop() timer    { return heap.Pop(h).(timer) }
func (h *timerHeap) init()         { heap.Init(h) }
