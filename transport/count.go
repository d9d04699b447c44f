package transport

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/fabgossip/fabgossip/transport/wire"
)

// The counting pre-pass. Before a frame body is decoded, its repeated
// fields are counted straight from the wire bytes (no allocation, time
// linear in the body) and checked against the Config caps, so a small
// frame of many empty items (two bytes each: 2 million envelopes in 4 MiB)
// is refused before it costs hundreds of bytes of heap per item.
//
// Counting stops at the first item over a cap, so a hostile frame is
// refused after a cap's worth of fields, not after all of them.
//
// The pre-pass parses no more strictly than proto.Unmarshal: where the wire
// bytes are malformed it stops counting and leaves the error to the
// decoder, which then fails too. Fields are counted the way the decoder
// fills them: a known field number with another wire type is an unknown
// field, not an item, and the items of repeated occurrences of a singular
// message (which proto merges) or of several oneof members (each decoded
// before the last one wins) add up.

// itemCaps are the count caps of the pre-pass, from Config.
type itemCaps struct {
	batchEnvelopes int // Batch.envelopes
	batchControl   int // Batch.control
	controlNumbers int // TreeControl.ihave + TreeControl.graft, per entry
	pullRanges     int // Digest.ranges, FetchRequest.ranges
	pullEnvelopes  int // FetchResponse.blocks, StateInfoSnapshot.elements, MembershipResponse.alive
}

func (c Config) itemCaps() itemCaps {
	return itemCaps{
		batchEnvelopes: c.MaxBatchEnvelopes,
		batchControl:   c.MaxBatchControl,
		controlNumbers: c.MaxControlNumbers,
		pullRanges:     c.MaxPullRanges,
		pullEnvelopes:  c.MaxPullEnvelopes,
	}
}

// batchCounts are the items of a batch, as the decoder will see them.
type batchCounts struct {
	envelopes, control, chunks int
}

// checkCounts runs the pre-pass for the message types that have one.
func checkCounts(body []byte, m proto.Message, caps itemCaps) error {
	switch m.(type) {
	case *wire.Batch:
		_, err := countBatch(body, caps)
		return err
	case *wire.PullRequest:
		return countPullRequest(body, caps)
	case *wire.PullResponse:
		return countPullResponse(body, caps)
	}
	return nil
}

// batchWithinCaps is countBatch for a batch about to be sent.
func batchWithinCaps(b *wire.Batch, caps itemCaps) error {
	if n := len(b.GetEnvelopes()); n > caps.batchEnvelopes {
		return tooMany("Batch.envelopes", n, caps.batchEnvelopes)
	}
	if n := len(b.GetControl()); n > caps.batchControl {
		return tooMany("Batch.control", n, caps.batchControl)
	}
	for _, c := range b.GetControl() {
		if n := len(c.GetIhave()) + len(c.GetGraft()); n > caps.controlNumbers {
			return tooMany("TreeControl.ihave+graft", n, caps.controlNumbers)
		}
	}
	if n := len(b.GetChunks()); n > caps.batchEnvelopes {
		return tooMany("Batch.chunks", n, caps.batchEnvelopes)
	}
	return nil
}

func tooMany(field string, n, limit int) error {
	return fmt.Errorf("%w: %s has %d, max %d", ErrTooManyItems, field, n, limit)
}

// overCap is tooMany when counting stopped at the first item over the cap.
func overCap(field string, limit int) error {
	return fmt.Errorf("%w: %s has more than %d", ErrTooManyItems, field, limit)
}

// countBatch counts a Batch's envelopes, control entries and chunks (capped
// as envelopes are), and the numbers of each control entry.
func countBatch(body []byte, caps itemCaps) (batchCounts, error) {
	var n batchCounts
	var err error
	eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if typ != protowire.BytesType {
			return true
		}
		switch num {
		case 1:
			if n.envelopes++; n.envelopes > caps.batchEnvelopes {
				err = overCap("Batch.envelopes", caps.batchEnvelopes)
			}
		case 2:
			if n.control++; n.control > caps.batchControl {
				err = overCap("Batch.control", caps.batchControl)
			} else if k := countControlNumbers(v); k > caps.controlNumbers {
				err = tooMany("TreeControl.ihave+graft", k, caps.controlNumbers)
			}
		case 3:
			if n.chunks++; n.chunks > caps.batchEnvelopes {
				err = overCap("Batch.chunks", caps.batchEnvelopes)
			}
		}
		return err == nil
	})
	return n, err
}

// countControlNumbers counts the IHAVE and GRAFT numbers of a TreeControl,
// packed or not.
func countControlNumbers(body []byte) int {
	n := 0
	eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if num == 3 || num == 4 {
			switch typ {
			case protowire.BytesType:
				n += countVarints(v)
			case protowire.VarintType:
				n++
			}
		}
		return true
	})
	return n
}

// countPullRequest counts the ranges of a fetch or chunk request.
func countPullRequest(body []byte, caps itemCaps) error {
	ranges := 0
	eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		switch {
		case num == 2 && typ == protowire.BytesType: // fetch
			ranges += countField(v, 2, caps.pullRanges-ranges) // FetchRequest.ranges
		case num == 5 && typ == protowire.BytesType: // chunks
			ranges += countField(v, 4, caps.pullRanges-ranges) // ChunkRequest.ranges
		}
		return ranges <= caps.pullRanges
	})
	if ranges > caps.pullRanges {
		return overCap("PullRequest ranges", caps.pullRanges)
	}
	return nil
}

// countPullResponse counts a response's ranges and envelopes, whichever
// members of its oneof it carries.
func countPullResponse(body []byte, caps itemCaps) error {
	ranges, envelopes := 0, 0
	eachField(body, func(num protowire.Number, typ protowire.Type, v []byte) bool {
		if typ != protowire.BytesType {
			return true
		}
		switch num {
		case 1: // digest
			ranges += countField(v, 2, caps.pullRanges-ranges) // Digest.ranges
		case 2, 3, 4, 5: // fetch, state_info, membership, chunks
			envelopes += countField(v, 1, caps.pullEnvelopes-envelopes) // blocks, elements, alive, chunks
		}
		return ranges <= caps.pullRanges && envelopes <= caps.pullEnvelopes
	})
	if ranges > caps.pullRanges {
		return overCap("Digest.ranges", caps.pullRanges)
	}
	if envelopes > caps.pullEnvelopes {
		return overCap("PullResponse envelopes", caps.pullEnvelopes)
	}
	return nil
}

// countField counts the length-delimited occurrences of field num, up to
// one more than limit.
func countField(body []byte, num protowire.Number, limit int) int {
	n := 0
	eachField(body, func(got protowire.Number, typ protowire.Type, _ []byte) bool {
		if got == num && typ == protowire.BytesType {
			n++
		}
		return n <= limit
	})
	return n
}

// eachField calls fn with each field of a message: its number, wire type
// and, for a length-delimited field, its value. It stops when fn returns
// false or at the first malformed field.
func eachField(body []byte, fn func(num protowire.Number, typ protowire.Type, v []byte) bool) {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return
		}
		body = body[n:]
		var v []byte
		var m int
		if typ == protowire.BytesType {
			v, m = protowire.ConsumeBytes(body)
		} else {
			m = protowire.ConsumeFieldValue(num, typ, body)
		}
		if m < 0 {
			return
		}
		body = body[m:]
		if !fn(num, typ, v) {
			return
		}
	}
}

// countVarints counts the varints of a packed field: the bytes that end
// one. Exact for well-formed bytes; the decoder rejects the rest.
func countVarints(b []byte) int {
	n := 0
	for _, c := range b {
		if c < 0x80 {
			n++
		}
	}
	return n
}
