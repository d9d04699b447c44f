package store

import (
	"bytes"
	"fmt"
	"maps"
	"sync"
)

// Memory is a Store in memory: the same contract as Bolt without
// persistence, for tests and for peers that need no durability. Its zero
// value is not usable; use NewMemory.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	channels map[string][]memBlock
	states   map[string]ChannelState
}

// memBlock is a stored block; both slices are private copies.
type memBlock struct {
	hash, env []byte
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{channels: make(map[string][]memBlock), states: make(map[string]ChannelState)}
}

// Append implements Store; the block is stored when Append returns.
func (m *Memory) Append(ch string, number uint64, hash, env []byte) error {
	return m.AppendBatch(ch, []Block{{Number: number, Hash: hash, Envelope: env}})
}

// AppendBatch implements Store.
func (m *Memory) AppendBatch(ch string, blocks []Block) error {
	if err := checkBatch(ch, blocks); err != nil {
		return err
	}
	stored := make([]memBlock, len(blocks))
	for i, b := range blocks {
		stored[i] = memBlock{hash: bytes.Clone(b.Hash), env: bytes.Clone(b.Envelope)}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if len(blocks) == 0 {
		return nil
	}
	if h := uint64(len(m.channels[ch])); blocks[0].Number != h {
		return outOfOrder(ch, blocks[0].Number, h)
	}
	m.channels[ch] = append(m.channels[ch], stored...)
	return nil
}

// Height implements Store.
func (m *Memory) Height(ch string) (uint64, error) {
	if err := checkChannel(ch); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, ErrClosed
	}
	return uint64(len(m.channels[ch])), nil
}

// LastHash implements Store.
func (m *Memory) LastHash(ch string) ([]byte, error) {
	if err := checkChannel(ch); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	bs := m.channels[ch]
	if len(bs) == 0 {
		return nil, nil
	}
	return bytes.Clone(bs[len(bs)-1].hash), nil
}

// Get implements Store.
func (m *Memory) Get(ch string, number uint64) ([]byte, error) {
	if err := checkChannel(ch); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	bs := m.channels[ch]
	if number >= uint64(len(bs)) {
		return nil, fmt.Errorf("%w: channel %q block %d", ErrNotFound, ch, number)
	}
	return bytes.Clone(bs[number].env), nil
}

// Range implements Store. The blocks are copied under the lock and f runs
// after it is released.
func (m *Memory) Range(ch string, from uint64, maxCount, maxBytes int, f func(number uint64, env []byte) bool) error {
	if err := checkChannel(ch); err != nil {
		return err
	}
	if err := checkBounds(maxCount, maxBytes, f); err != nil {
		return err
	}
	var envs [][]byte
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return ErrClosed
	}
	bs := m.channels[ch]
	total := 0
	for n := from; n < uint64(len(bs)) && len(envs) < maxCount; n++ {
		env := bs[n].env
		if len(envs) > 0 && total+len(env) > maxBytes {
			break
		}
		total += len(env)
		envs = append(envs, bytes.Clone(env))
	}
	m.mu.Unlock()
	for i, env := range envs {
		if !f(from+uint64(i), env) {
			break
		}
	}
	return nil
}

// PutChannelState implements Store.
func (m *Memory) PutChannelState(ch string, st ChannelState) error {
	if err := checkChannel(ch); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.states[ch] = st
	return nil
}

// ChannelStates implements Store.
func (m *Memory) ChannelStates() (map[string]ChannelState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	return maps.Clone(m.states), nil
}

// Close implements Store; it drops the blocks.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	m.channels, m.states = nil, nil
	return nil
}
