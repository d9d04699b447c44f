package store

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Record formats, version 1. The checksum is CRC32C (Castagnoli, hardware
// accelerated): it detects a corrupt or misplaced record, not an attacker —
// blocks are signed and hash-chained for that. It covers the channel name and
// the number too, so a record read under the wrong key fails its check.
//
//	block record:  version(1) | crc32c(4, big-endian) | hashLen(1) | hash | envelope
//	               crc over channel ‖ number(8, big-endian) ‖ hashLen ‖ hash ‖ envelope
//	state record:  version(1) | flags(1) | crc32c(4, big-endian)
//	               crc over channel ‖ version ‖ flags
const (
	recordVersion    = 1
	blockHeaderSize  = 1 + 4 + 1 // version, crc, hash length
	stateRecordSize  = 1 + 1 + 4
	stateFlagJoined  = 1 << 0
	stateFlagLeft    = 1 << 1
	stateFlagsKnown  = stateFlagJoined | stateFlagLeft
	blockKeySize     = 8
	maxBlockRecord   = blockHeaderSize + MaxHashSize + MaxEnvelopeSize
	minBlockRecord   = blockHeaderSize + 1 + 1
	stateRecordCRCAt = 2
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// blockKey is the database key of block number: big-endian, so keys sort as
// numbers.
func blockKey(number uint64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, blockKeySize), number)
}

// keyNumber decodes a database key; ok is false for a key of the wrong size.
func keyNumber(k []byte) (uint64, bool) {
	if len(k) != blockKeySize {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// blockCRC is the checksum of a block record's body (everything after the
// checksum field).
func blockCRC(ch string, number uint64, body []byte) uint32 {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], number)
	c := crc32.Update(0, castagnoli, []byte(ch))
	c = crc32.Update(c, castagnoli, n[:])
	return crc32.Update(c, castagnoli, body)
}

// encodeBlock returns the record of a block whose hash and envelope passed
// checkBatch.
func encodeBlock(ch string, number uint64, hash, env []byte) []byte {
	rec := make([]byte, blockHeaderSize, blockHeaderSize+len(hash)+len(env))
	rec[0] = recordVersion
	rec[5] = byte(len(hash))
	rec = append(rec, hash...)
	rec = append(rec, env...)
	binary.BigEndian.PutUint32(rec[1:5], blockCRC(ch, number, rec[5:]))
	return rec
}

// decodeBlock checks a block record of channel ch stored under number and
// returns its hash and envelope. They alias rec: callers copy what outlives
// the database transaction. Every length is checked before it is used.
func decodeBlock(ch string, number uint64, rec []byte) (hash, env []byte, err error) {
	if len(rec) < minBlockRecord || len(rec) > maxBlockRecord {
		return nil, nil, fmt.Errorf("%w: channel %q block %d: record of %d bytes", ErrCorrupt, ch, number, len(rec))
	}
	if rec[0] != recordVersion {
		return nil, nil, fmt.Errorf("%w: channel %q block %d: record version %d", ErrCorrupt, ch, number, rec[0])
	}
	if want, got := binary.BigEndian.Uint32(rec[1:5]), blockCRC(ch, number, rec[5:]); want != got {
		return nil, nil, fmt.Errorf("%w: channel %q block %d: checksum %08x, stored %08x", ErrCorrupt, ch, number, got, want)
	}
	n := int(rec[5])
	if n == 0 || n > MaxHashSize || blockHeaderSize+n >= len(rec) {
		return nil, nil, fmt.Errorf("%w: channel %q block %d: hash length %d in a record of %d bytes", ErrCorrupt, ch, number, n, len(rec))
	}
	return rec[blockHeaderSize : blockHeaderSize+n], rec[blockHeaderSize+n:], nil
}

// stateCRC is the checksum of a state record.
func stateCRC(ch string, version, flags byte) uint32 {
	c := crc32.Update(0, castagnoli, []byte(ch))
	return crc32.Update(c, castagnoli, []byte{version, flags})
}

// encodeState returns the record of a channel state.
func encodeState(ch string, st ChannelState) []byte {
	var flags byte
	if st.Joined {
		flags |= stateFlagJoined
	}
	if st.Left {
		flags |= stateFlagLeft
	}
	rec := []byte{recordVersion, flags, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(rec[stateRecordCRCAt:], stateCRC(ch, recordVersion, flags))
	return rec
}

// decodeState checks and decodes a state record of channel ch.
func decodeState(ch string, rec []byte) (ChannelState, error) {
	if len(rec) != stateRecordSize {
		return ChannelState{}, fmt.Errorf("%w: channel %q: state record of %d bytes", ErrCorrupt, ch, len(rec))
	}
	if rec[0] != recordVersion {
		return ChannelState{}, fmt.Errorf("%w: channel %q: state record version %d", ErrCorrupt, ch, rec[0])
	}
	if want, got := binary.BigEndian.Uint32(rec[stateRecordCRCAt:]), stateCRC(ch, rec[0], rec[1]); want != got {
		return ChannelState{}, fmt.Errorf("%w: channel %q: state checksum %08x, stored %08x", ErrCorrupt, ch, got, want)
	}
	if rec[1]&^stateFlagsKnown != 0 {
		return ChannelState{}, fmt.Errorf("%w: channel %q: unknown state flags %#x", ErrCorrupt, ch, rec[1])
	}
	return ChannelState{Joined: rec[1]&stateFlagJoined != 0, Left: rec[1]&stateFlagLeft != 0}, nil
}
