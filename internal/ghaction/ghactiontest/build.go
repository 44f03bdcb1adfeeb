package ghactiontest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
