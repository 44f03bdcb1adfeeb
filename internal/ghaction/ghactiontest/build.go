package ghactiontest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Build is MustBuild for callers without a testing.TB, such as a TestMain
// or a sync.OnceValues shared by a package's tests: it builds the main
// package in moduleDir into outDir, adds the post alias, and returns the
// binary's path.
func Build(outDir, moduleDir string) (string, error) {
	meta, err := readActionYML(filepath.Join(moduleDir, "action.yml"))
	if err != nil {
		return "", err
	}
	if meta.Runs.Entrypoint == "" {
		return "", fmt.Errorf("%s: runs.entrypoint is empty", filepath.Join(moduleDir, "action.yml"))
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("find the go command: %w", err)
	}
	out := filepath.Join(outDir, filepath.Base(meta.Runs.Entrypoint))
	cmd := exec.Command(goTool, "build", "-o", out, ".")
	cmd.Dir = moduleDir
	// Static, like the Dockerfile's build stage, so the child needs no PATH or libc.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", moduleDir, err, b)
	}
	if post := meta.Runs.PostEntrypoint; post != "" {
		alias := filepath.Join(outDir, filepath.Base(post))
		if err := os.Symlink(filepath.Base(out), alias); err != nil {
			return "", fmt.Errorf("create post alias: %w", err)
		}
	}
	return out, nil
}

// SharedBuild is one binary for all the tests of a package: Build runs the
// first time a test asks for it, into a directory of its own rather than
// that test's TempDir (which would be removed under the tests still using
// it), and TestMain calls Remove once m.Run is done.
type SharedBuild struct {
	dir func() (string, error)
	bin func() (string, error)
}

// NewSharedBuild returns the SharedBuild of the main package in moduleDir;
// nothing is built until Path is called.
func NewSharedBuild(moduleDir string) *SharedBuild {
	s := &SharedBuild{dir: sync.OnceValues(func() (string, error) { return os.MkdirTemp("", "ghactiontest-build") })}
	s.bin = sync.OnceValues(func() (string, error) {
		dir, err := s.dir()
		if err != nil {
			return "", err
		}
		return Build(dir, moduleDir)
	})
	return s
}

// Path returns the binary's path, building it if no test has yet; a failed
// build fails tb, and every later caller, with the same error.
func (s *SharedBuild) Path(tb testing.TB) string {
	tb.Helper()
	bin, err := s.bin()
	if err != nil {
		tb.Fatal(err)
	}
	return bin
}

// Remove deletes the directory the binary is built in.
func (s *SharedBuild) Remove() {
	if dir, err := s.dir(); err == nil {
		_ = os.RemoveAll(dir)
	}
}
