package store_test

import (
	"fmt"
	"log"
	"os"

	"github.com/fabgossip/fabgossip/node/store"
)

// A peer stores what it delivers, and after a restart resumes at the stored
// height and serves a bounded range to a peer catching up.
func ExampleOpen() {
	dir, err := os.MkdirTemp("", "store-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	s, err := store.Open(dir)
	if err != nil {
		log.Fatal(err)
	}
	for n := range uint64(3) {
		env := fmt.Appendf(nil, "envelope %d", n)
		if err := s.Append("mychannel", n, []byte{byte(n)}, env); err != nil {
			log.Fatal(err)
		}
	}
	_ = s.Close()

	s, err = store.Open(dir) // the restart
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
	h, _ := s.Height("mychannel")
	fmt.Println("resume at", h)
	_ = s.Range("mychannel", 1, 10, 1<<20, func(n uint64, env []byte) bool {
		fmt.Printf("%d: %s\n", n, env)
		return true
	})
	// Output:
	// resume at 3
	// 1: envelope 1
	// 2: envelope 2
}
