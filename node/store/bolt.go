package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// FileName is the name of the database file inside the store's directory.
const FileName = "blocks.db"

// Bucket names and the format version kept in the meta bucket.
var (
	bucketBlocks   = []byte("blocks")   // one sub-bucket per channel: blockKey → block record
	bucketChannels = []byte("channels") // channel → state record
	bucketMeta     = []byte("meta")
	keyFormat      = []byte("format")
	formatVersion  = []byte{1}
)

// Defaults of the options.
const (
	// DefaultLockTimeout is how long Open waits for another process to
	// release the database file before it fails with ErrLocked.
	DefaultLockTimeout = time.Second
	// DefaultVerifyTail is how many of each channel's newest records Open
	// checksums; see WithVerifyTail.
	DefaultVerifyTail = 128
)

// Bolt is the Store on disk: one bbolt file in a directory. Every Append,
// AppendBatch and PutChannelState is one bbolt transaction, fsync'd before
// it returns (unless WithNoSync), so a returned call survives a crash and an
// interrupted one leaves no trace.
type Bolt struct {
	db     *bolt.DB
	closed atomic.Bool
	// broken is set when bbolt panicked on the file: the process goes on,
	// but the store answers every later call with this error.
	broken atomic.Pointer[error]
}

var _ Store = (*Bolt)(nil)

// options are the settings of Open.
type options struct {
	noSync      bool
	lockTimeout time.Duration
	verifyTail  int
	logger      *slog.Logger
}

// Option configures Open.
type Option func(*options)

// WithNoSync skips the fsync at each commit. A commit still reaches the
// operating system before the call returns, so the store stays crash-safe
// against the process dying (kill -9); an operating-system crash or power
// loss may lose the latest commits (never the prefix property). Meant for
// testnets running many peers on one machine.
func WithNoSync() Option { return func(o *options) { o.noSync = true } }

// WithLockTimeout sets how long Open waits for the file lock held by another
// process (default DefaultLockTimeout).
func WithLockTimeout(d time.Duration) Option { return func(o *options) { o.lockTimeout = d } }

// WithVerifyTail sets how many of each channel's newest blocks Open
// checksums (default DefaultVerifyTail); -1 checks all of them, which reads
// the whole file. Older blocks are checked when they are read.
func WithVerifyTail(n int) Option { return func(o *options) { o.verifyTail = n } }

// WithLogger sets the logger Open reports repairs to (default slog.Default).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.logger = l } }

func (o *options) validate() error {
	switch {
	case o.lockTimeout <= 0:
		return fmt.Errorf("%w: lock timeout %v, want > 0", ErrInvalid, o.lockTimeout)
	case o.verifyTail < -1:
		return fmt.Errorf("%w: verify tail %d, want >= -1", ErrInvalid, o.verifyTail)
	case o.logger == nil:
		return fmt.Errorf("%w: nil logger", ErrInvalid)
	}
	return nil
}

// Open opens the store in dir, creating dir (mode 0700) and the database file
// (mode 0600) when missing. It then restores the prefix property: in every
// channel the block numbers must run 0, 1, 2, ... and the newest records
// (WithVerifyTail) must pass their checksum; from the first missing or
// corrupt block on, the channel's blocks are removed and logged, so the
// height is that block's number. A file another process holds fails with
// ErrLocked.
func Open(dir string, opts ...Option) (*Bolt, error) {
	o := options{lockTimeout: DefaultLockTimeout, verifyTail: DefaultVerifyTail, logger: slog.Default()}
	for _, opt := range opts {
		opt(&o)
	}
	if err := o.validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create directory: %w", err)
	}
	path := filepath.Join(dir, FileName)
	var s *Bolt
	err := guard(func() error {
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: o.lockTimeout, NoSync: o.noSync})
		switch {
		case errors.Is(err, berrors.ErrTimeout):
			return fmt.Errorf("%w: %s", ErrLocked, path)
		case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrChecksum), errors.Is(err, berrors.ErrVersionMismatch):
			return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
		case err != nil:
			return fmt.Errorf("store: open %s: %w", path, err)
		}
		s = &Bolt{db: db}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := s.update(func(tx *bolt.Tx) error { return recoverTx(tx, o.verifyTail, o.logger) }); err != nil {
		_ = s.db.Close()
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return s, nil
}

// recoverTx creates the buckets of a new file, checks the format of an old
// one, and cuts every channel back to its longest sound prefix.
func recoverTx(tx *bolt.Tx, verifyTail int, log *slog.Logger) error {
	meta, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return fmt.Errorf("%w: meta bucket: %w", ErrCorrupt, err)
	}
	switch v := meta.Get(keyFormat); {
	case v == nil:
		if err := meta.Put(keyFormat, formatVersion); err != nil {
			return err
		}
	case !bytes.Equal(v, formatVersion):
		return fmt.Errorf("%w: format version %x, want %x", ErrCorrupt, v, formatVersion)
	}
	if _, err := tx.CreateBucketIfNotExists(bucketChannels); err != nil {
		return fmt.Errorf("%w: channels bucket: %w", ErrCorrupt, err)
	}
	blocks, err := tx.CreateBucketIfNotExists(bucketBlocks)
	if err != nil {
		return fmt.Errorf("%w: blocks bucket: %w", ErrCorrupt, err)
	}
	var channels []string
	err = blocks.ForEachBucket(func(k []byte) error {
		channels = append(channels, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for _, ch := range channels {
		if err := recoverChannel(ch, blocks.Bucket([]byte(ch)), verifyTail, log); err != nil {
			return err
		}
	}
	return nil
}

// recoverChannel finds the first block of ch that is missing (a gap), has a
// malformed key, or (among the newest verifyTail) fails its checksum, and
// deletes it and everything after it.
func recoverChannel(ch string, b *bolt.Bucket, verifyTail int, log *slog.Logger) error {
	if checkChannel(ch) != nil {
		return fmt.Errorf("%w: channel name of %d bytes", ErrCorrupt, len(ch))
	}
	var height uint64 // first number not known to be sound
	cut := false
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		n, ok := keyNumber(k)
		if !ok || n != height || v == nil {
			cut = true
			break
		}
		height++
	}
	tail := height
	if verifyTail >= 0 {
		tail = min(height, uint64(verifyTail))
	}
	for n := height - tail; n < height; n++ {
		if _, _, err := decodeBlock(ch, n, b.Get(blockKey(n))); err != nil {
			log.Warn("store: corrupt block, cutting channel back", "channel", ch, "block", n, "err", err)
			height, cut = n, true
			break
		}
	}
	if !cut {
		return nil
	}
	// Collect first: a bbolt cursor skips an entry after Delete.
	var doomed [][]byte
	for k, _ := c.Seek(blockKey(height)); k != nil; k, _ = c.Next() {
		doomed = append(doomed, bytes.Clone(k))
	}
	// Keys that sort below blockKey(height) but are not 8 bytes long.
	for k, _ := c.First(); k != nil && bytes.Compare(k, blockKey(height)) < 0; k, _ = c.Next() {
		if _, ok := keyNumber(k); !ok {
			doomed = append(doomed, bytes.Clone(k))
		}
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			if !errors.Is(err, berrors.ErrIncompatibleValue) {
				return err
			}
			if err := b.DeleteBucket(k); err != nil {
				return err
			}
		}
	}
	log.Warn("store: channel cut back to its sound prefix", "channel", ch, "height", height, "removed", len(doomed))
	return nil
}

// Append implements Store: one fsync'd transaction.
func (s *Bolt) Append(ch string, number uint64, hash, env []byte) error {
	return s.AppendBatch(ch, []Block{{Number: number, Hash: hash, Envelope: env}})
}

// AppendBatch implements Store: one fsync'd transaction for the whole batch,
// which is what makes batches much cheaper per block than single appends.
func (s *Bolt) AppendBatch(ch string, blocks []Block) error {
	if err := checkBatch(ch, blocks); err != nil {
		return err
	}
	if len(blocks) == 0 {
		return s.live()
	}
	recs := make([][]byte, len(blocks))
	for i, b := range blocks {
		recs[i] = encodeBlock(ch, b.Number, b.Hash, b.Envelope)
	}
	return s.update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketBlocks).CreateBucketIfNotExists([]byte(ch))
		if err != nil {
			return fmt.Errorf("%w: channel %q bucket: %w", ErrCorrupt, ch, err)
		}
		h, err := bucketHeight(ch, b)
		if err != nil {
			return err
		}
		if blocks[0].Number != h {
			return outOfOrder(ch, blocks[0].Number, h)
		}
		// Keys only ever grow: fill pages completely instead of leaving room
		// for inserts that never come.
		b.FillPercent = 1
		for i, rec := range recs {
			if err := b.Put(blockKey(blocks[i].Number), rec); err != nil {
				return err
			}
		}
		return nil
	})
}

// Height implements Store.
func (s *Bolt) Height(ch string) (h uint64, err error) {
	if err := checkChannel(ch); err != nil {
		return 0, err
	}
	err = s.view(func(tx *bolt.Tx) error {
		h, err = bucketHeight(ch, tx.Bucket(bucketBlocks).Bucket([]byte(ch)))
		return err
	})
	return h, err
}

// bucketHeight is the height of a channel bucket (nil for a channel never
// appended to): one past its last key.
func bucketHeight(ch string, b *bolt.Bucket) (uint64, error) {
	if b == nil {
		return 0, nil
	}
	k, _ := b.Cursor().Last()
	if k == nil {
		return 0, nil
	}
	n, ok := keyNumber(k)
	if !ok || n == ^uint64(0) {
		return 0, fmt.Errorf("%w: channel %q: key %x", ErrCorrupt, ch, k)
	}
	return n + 1, nil
}

// LastHash implements Store.
func (s *Bolt) LastHash(ch string) (hash []byte, err error) {
	if err := checkChannel(ch); err != nil {
		return nil, err
	}
	err = s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocks).Bucket([]byte(ch))
		h, err := bucketHeight(ch, b)
		if err != nil || h == 0 {
			return err
		}
		hh, _, err := decodeBlock(ch, h-1, b.Get(blockKey(h-1)))
		hash = bytes.Clone(hh)
		return err
	})
	return hash, err
}

// Get implements Store; the record's checksum is verified.
func (s *Bolt) Get(ch string, number uint64) (env []byte, err error) {
	if err := checkChannel(ch); err != nil {
		return nil, err
	}
	err = s.view(func(tx *bolt.Tx) error {
		var rec []byte
		if b := tx.Bucket(bucketBlocks).Bucket([]byte(ch)); b != nil {
			rec = b.Get(blockKey(number))
		}
		if rec == nil {
			return fmt.Errorf("%w: channel %q block %d", ErrNotFound, ch, number)
		}
		_, e, err := decodeBlock(ch, number, rec)
		env = bytes.Clone(e)
		return err
	})
	return env, err
}

// Range implements Store. The blocks are copied out of one read transaction
// (bounded by maxCount and maxBytes) and f runs after it ended: a slow f
// never holds the file's memory map, which a growing write has to replace.
// On a corrupt record f still receives the sound blocks before it, and Range
// returns an error wrapping ErrCorrupt.
func (s *Bolt) Range(ch string, from uint64, maxCount, maxBytes int, f func(number uint64, env []byte) bool) error {
	if err := checkChannel(ch); err != nil {
		return err
	}
	if err := checkBounds(maxCount, maxBytes, f); err != nil {
		return err
	}
	var envs [][]byte
	err := s.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketBlocks).Bucket([]byte(ch))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		total := 0
		for k, v := c.Seek(blockKey(from)); k != nil && len(envs) < maxCount; k, v = c.Next() {
			want := from + uint64(len(envs))
			if n, ok := keyNumber(k); !ok || n != want {
				return fmt.Errorf("%w: channel %q: key %x where block %d belongs", ErrCorrupt, ch, k, want)
			}
			_, env, err := decodeBlock(ch, want, v)
			if err != nil {
				return err
			}
			if len(envs) > 0 && total+len(env) > maxBytes {
				break
			}
			total += len(env)
			envs = append(envs, bytes.Clone(env))
		}
		return nil
	})
	for i, env := range envs {
		if !f(from+uint64(i), env) {
			break
		}
	}
	return err
}

// PutChannelState implements Store: one fsync'd transaction.
func (s *Bolt) PutChannelState(ch string, st ChannelState) error {
	if err := checkChannel(ch); err != nil {
		return err
	}
	rec := encodeState(ch, st)
	return s.update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChannels).Put([]byte(ch), rec)
	})
}

// ChannelStates implements Store; a corrupt state record fails the call.
func (s *Bolt) ChannelStates() (map[string]ChannelState, error) {
	states := make(map[string]ChannelState)
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketChannels).ForEach(func(k, v []byte) error {
			ch := string(k)
			if checkChannel(ch) != nil {
				return fmt.Errorf("%w: state of a channel named %d bytes", ErrCorrupt, len(k))
			}
			st, err := decodeState(ch, v)
			states[ch] = st
			return err
		})
	})
	if err != nil {
		return nil, err
	}
	return states, nil
}

// Close implements Store: it waits for running calls and releases the file.
func (s *Bolt) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return guard(s.db.Close)
}

// live returns the error every call returns on a closed or broken store.
func (s *Bolt) live() error {
	if s.closed.Load() {
		return ErrClosed
	}
	if p := s.broken.Load(); p != nil {
		return *p
	}
	return nil
}

// view runs fn in a read transaction, guarded.
func (s *Bolt) view(fn func(*bolt.Tx) error) error {
	return s.tx(s.db.View, fn)
}

// update runs fn in a write transaction, guarded.
func (s *Bolt) update(fn func(*bolt.Tx) error) error {
	return s.tx(s.db.Update, fn)
}

func (s *Bolt) tx(run func(func(*bolt.Tx) error) error, fn func(*bolt.Tx) error) error {
	if err := s.live(); err != nil {
		return err
	}
	err := guard(func() error { return run(fn) })
	switch {
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return ErrClosed
	case errors.Is(err, errPanic):
		s.broken.CompareAndSwap(nil, &err)
	}
	return err
}

// errPanic marks an error made from a recovered panic.
var errPanic = errors.New("database panicked")

// guard runs fn and turns a panic — bbolt panics on some corrupt pages, and
// a fault in its memory map is made a panic for the duration — into an error
// wrapping ErrCorrupt. bbolt's View and Update roll their transaction back
// on a panic, so no lock stays held.
func guard(fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %w: %v", ErrCorrupt, errPanic, r)
		}
	}()
	return fn()
}
