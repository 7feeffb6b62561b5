package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

const (
	identitySecretMode fs.FileMode = 0o600
	identityPublicMode fs.FileMode = 0o644
	identityDirMode    fs.FileMode = 0o700
)

type identityFile struct {
	name string
	data []byte
	mode fs.FileMode
}

// identityWriteFiles writes all files into dir or none of them: it checks
// every target before writing any, so a refusal never leaves a cluster with
// a new key next to an old certificate. Each file is written to a
// temporary name with its final mode and then moved into place, so a key is
// never readable with looser permissions, even briefly. Without force the
// move is a hard link, which fails atomically if the target appeared since.
func identityWriteFiles(warn io.Writer, dir string, force bool, files ...identityFile) error {
	if err := os.MkdirAll(dir, identityDirMode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "Warning: %s is accessible to other users (mode %v); private keys belong in a 0700 directory.\n", dir, st.Mode().Perm())
	}
	if !force {
		for _, f := range files {
			path := filepath.Join(dir, f.name)
			if _, err := os.Lstat(path); err == nil {
				return identityExistsError(path)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	for _, f := range files {
		if err := identityWriteFile(filepath.Join(dir, f.name), f.data, f.mode, force); err != nil {
			return err
		}
	}
	return nil
}

func identityExistsError(path string) error {
	return fmt.Errorf("%s already exists; refusing to overwrite it (pass --force to replace it)", path)
}

func identityWriteFile(path string, data []byte, mode fs.FileMode, force bool) (err error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if rmErr := os.Remove(tmp.Name()); rmErr != nil && !errors.Is(rmErr, fs.ErrNotExist) && err == nil {
			err = rmErr
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if force {
		return os.Rename(tmp.Name(), path)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return identityExistsError(path)
		}
		return err
	}
	return nil
}
