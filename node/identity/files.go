package identity

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteMode says whether a Write function may replace an existing file.
type WriteMode uint8

const (
	// CreateOnly refuses to write over an existing file; the error wraps
	// fs.ErrExist. It is the zero value: losing a key to a typo must be hard.
	CreateOnly WriteMode = iota
	// Replace atomically replaces an existing file.
	Replace
)

// writeFileAtomic writes data to path with exactly the permissions perm
// (umask does not apply): into a temporary file in the same directory, synced,
// then moved into place, so a reader never sees a partial file and a crash
// leaves the old file or the new one. With CreateOnly the move is a hard link,
// which fails if path exists, so two writers cannot both win; on file systems
// without hard links it falls back to check-then-rename.
func writeFileAtomic(path string, data []byte, perm fs.FileMode, mode WriteMode) (err error) {
	if mode == CreateOnly {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s already exists; refusing to overwrite it: %w", path, fs.ErrExist)
		}
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer func() {
		// After a rename this fails harmlessly; after a link it drops the
		// temporary name; after a failure it cleans up.
		_ = os.Remove(tmp)
	}()
	// The temporary file is created 0600, so a key is never readable by
	// others, not even for an instant; widen only if asked.
	if err := f.Chmod(perm); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}

	switch mode {
	case CreateOnly:
		if err := os.Link(tmp, path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("%s already exists; refusing to overwrite it: %w", path, fs.ErrExist)
			}
			// No hard links here (some network and FUSE file systems):
			// the Lstat above was the check.
			if err := os.Rename(tmp, path); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
		}
	case Replace:
		if err := os.Rename(tmp, path); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	default:
		return fmt.Errorf("write %s: unknown WriteMode %d", path, mode)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a rename durable. Best effort: not every platform can sync a
// directory, and the file itself is already synced.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// readFileCapped reads a regular file of at most limit bytes.
func readFileCapped(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	return readOpenFile(f, path, limit)
}

func readOpenFile(f *os.File, path string, limit int64) ([]byte, error) {
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file (%s)", path, info.Mode().Type())
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: larger than %d bytes; is it the right file?", path, limit)
	}
	return data, nil
}
