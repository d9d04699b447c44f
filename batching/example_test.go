package batching_test

import (
	"fmt"
	"strings"
	"time"

	"github.com/fabgossip/fabgossip/batching"
)

// A StateInfo-like message: a newer one about the same peer and channel
// supersedes the buffered one, which keeps its place in line.
type stateInfo struct {
	peer, channel string
	height        uint64
}

func Example() {
	cfg := batching.DefaultConfig()
	cfg.Latency = time.Hour // for the example: only Close flushes

	e, err := batching.New(cfg, func(batch []stateInfo) {
		line := make([]string, len(batch))
		for i, m := range batch {
			line[i] = fmt.Sprintf("%s/%s@%d", m.peer, m.channel, m.height)
		}
		fmt.Println(strings.Join(line, " "))
	})
	if err != nil {
		panic(err)
	}
	add := func(m stateInfo) {
		key := m.peer + "/" + m.channel
		if err := e.Add(batching.Item[stateInfo]{Msg: m, Key: key, Size: 64}); err != nil {
			fmt.Println(err)
		}
	}
	add(stateInfo{"p1", "ch1", 10})
	add(stateInfo{"p2", "ch1", 7})
	add(stateInfo{"p1", "ch1", 11}) // replaces p1/ch1@10 in place
	e.Close()                       // flushes what is buffered
	add(stateInfo{"p3", "ch1", 1})
	// Output:
	// p1/ch1@11 p2/ch1@7
	// batching: emitter closed
}
