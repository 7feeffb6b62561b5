package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

const (
	identitySecretMode fs.FileMode = 0o600
	identityPublicMode fs.FileMode = 0o644
	identityDirMode    fs.FileMode = 0o700
)

// Sets of files that `ferry identity` writes together; each has its own
// link, so a root and an issuer may share a directory.
const (
	identitySetRoot   = "root"
	identitySetIssuer = "issuer"
)

type identityFile struct {
	name string
	data []byte
	mode fs.FileMode
}

// identityFault, when set (by tests only), is called at each step of a
// write and stops the write if it returns an error, leaving everything as
// a crash at that point would: nothing is cleaned up.
var identityFault func(step string) error

func identityStep(step string) error {
	if identityFault == nil {
		return nil
	}
	return identityFault(step)
}

// identityWriteFiles writes a set of files (a key and the certificates that
// go with it) into dir so that, whenever it stops, dir holds either the old
// set or the new one, never a new key beside an old certificate.
//
// Each name in dir is a symlink into .ferry-<set>, itself a symlink to a
// directory .ferry-<set>-<random> that holds the real files. A write puts
// every new file into a fresh directory, fsyncs them and it, and then
// renames a new .ferry-<set> link over the old one: that one rename switches
// every name at once. The directory dir itself is not renamed because it
// need not be Ferry's alone: `init` writes into "." by default, beside the
// clusters' issuer directories.
//
// Without force nothing is overwritten: every name is checked before
// anything is written, and each link is created so that it fails if the
// name appeared since. With force, plain files (as earlier versions wrote
// them) are first moved into the same layout with their content unchanged,
// so that step is safe to stop at too.
func identityWriteFiles(warn io.Writer, dir, set string, force bool, files ...identityFile) error {
	if err := os.MkdirAll(dir, identityDirMode); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o077 != 0 {
		fmt.Fprintf(warn, "Warning: %s is accessible to other users (mode %v); private keys belong in a 0700 directory.\n", dir, st.Mode().Perm())
	}
	w := identityWriter{dir: dir, link: ".ferry-" + set}
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
	if err := w.removeStale(); err != nil {
		return err
	}
	if force {
		if err := w.adopt(files); err != nil {
			return err
		}
	}
	data, err := w.newData(files)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := w.linkName(f.name, force); err != nil {
			return err
		}
	}
	if err := identityStep("commit"); err != nil {
		return err
	}
	if err := w.point(data); err != nil {
		return err
	}
	// The old directory is garbage now; a failure to remove it costs disk
	// space, not correctness, and the next write tries again.
	if err := w.removeStale(); err != nil {
		fmt.Fprintf(warn, "Warning: could not remove the previous files: %v\n", err)
	}
	return nil
}

func identityExistsError(path string) error {
	return fmt.Errorf("%s already exists; refusing to overwrite it (pass --force to replace it)", path)
}

type identityWriter struct {
	dir  string
	link string // .ferry-<set>
}

// target is what each name links to.
func (w identityWriter) target(name string) string { return w.link + "/" + name }

// newData writes files into a fresh directory and fsyncs them and it. The
// directory is created 0700, so a key is never readable by others, even
// before its own mode is set.
func (w identityWriter) newData(files []identityFile) (string, error) {
	data, err := os.MkdirTemp(w.dir, w.link+"-")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		if err := writeSynced(filepath.Join(data, f.name), f.data, f.mode); err != nil {
			return "", err
		}
		if err := identityStep("wrote " + f.name); err != nil {
			return "", err
		}
	}
	return data, syncDir(data)
}

// linkName makes name a link to its place under the set's link, unless it
// is one already. The link may dangle until point runs: until then the
// name, like every other new name, does not resolve.
func (w identityWriter) linkName(name string, force bool) error {
	path := filepath.Join(w.dir, name)
	if t, err := os.Readlink(path); err == nil && t == w.target(name) && force {
		return nil
	}
	if err := os.Symlink(w.target(name), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return identityExistsError(path)
		}
		return err
	}
	if err := syncDir(w.dir); err != nil {
		return err
	}
	return identityStep("linked " + name)
}

// point makes the set's link name data (a directory in w.dir): the rename
// of a new link over the old one is the commit.
func (w identityWriter) point(data string) error {
	tmp := filepath.Join(w.dir, w.link+".tmp-"+strings.TrimPrefix(filepath.Base(data), w.link+"-"))
	if err := os.Symlink(filepath.Base(data), tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(w.dir, w.link)); err != nil {
		return err
	}
	return syncDir(w.dir)
}

// adopt turns each name that is not yet a link of this layout (a plain
// file, or a link of the user's) into one, after copying its content into
// the current data directory: the name reads the same bytes before and
// after, so stopping anywhere here changes nothing a reader sees.
func (w identityWriter) adopt(files []identityFile) error {
	cur := ""
	if t, err := os.Readlink(filepath.Join(w.dir, w.link)); err == nil {
		cur = filepath.Join(w.dir, t)
	}
	for _, f := range files {
		path := filepath.Join(w.dir, f.name)
		if t, err := os.Readlink(path); err == nil && t == w.target(f.name) {
			continue
		}
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return err
		}
		if !st.Mode().IsRegular() {
			return fmt.Errorf("%s is not a file; move it away and run this again", path)
		}
		old, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if cur == "" {
			if cur, err = os.MkdirTemp(w.dir, w.link+"-"); err != nil {
				return err
			}
		}
		if err := writeSynced(filepath.Join(cur, f.name), old, st.Mode().Perm()); err != nil {
			return err
		}
		if err := syncDir(cur); err != nil {
			return err
		}
		if err := w.point(cur); err != nil {
			return err
		}
		tmp := filepath.Join(w.dir, "."+f.name+".tmp-link")
		_ = os.Remove(tmp)
		if err := os.Symlink(w.target(f.name), tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, path); err != nil {
			return err
		}
		if err := syncDir(w.dir); err != nil {
			return err
		}
		if err := identityStep("adopted " + f.name); err != nil {
			return err
		}
	}
	return nil
}

// removeStale removes what stopped writes left: data directories the link
// does not name, and temporary links.
func (w identityWriter) removeStale() error {
	cur, _ := os.Readlink(filepath.Join(w.dir, w.link))
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		stale := (strings.HasPrefix(n, w.link+"-") && n != cur) || strings.HasPrefix(n, w.link+".tmp-")
		if !stale {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.dir, n)); err != nil {
			return err
		}
	}
	return nil
}

// writeSynced creates path with mode (not subject to the umask), writes
// data and fsyncs it.
func writeSynced(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// syncDir makes the entries of dir durable: a rename is not, until its
// directory is synced.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
