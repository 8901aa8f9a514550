package lsp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// BinaryEnv names an environment variable holding the path of an asynclspd
// binary to use instead of building one.
const BinaryEnv = "ASYNCLSP_DAEMON_BIN"

// RaceEnv names an environment variable that chooses whether asynclspd is
// built with the race detector: 1 yes, 0 no. Unset, it follows the binary
// that builds it: `go test -race` (make test) races the daemons too, and a
// race they report fails the test when they stop (exit status 66).
const RaceEnv = "ASYNCLSP_DAEMON_RACE"

// daemonPkg is the package Build compiles.
const daemonPkg = "github.com/asynclsp/asynclsp/cmd/asynclspd"

// built is the binary Build made for this process.
var built struct {
	sync.Mutex
	dir  string
	path string
}

// Build compiles asynclspd from this module into a temporary folder, once
// per process, and returns its path; later calls return the same path. It
// must run inside the module (a test, or `go run` from the repository).
// The build cache makes it take seconds after the first time. $BinaryEnv,
// if set, names a binary to use instead.
func Build(ctx context.Context) (string, error) {
	if p := os.Getenv(BinaryEnv); p != "" {
		if err := checkExecutable(p); err != nil {
			return "", fmt.Errorf("$%s: %w", BinaryEnv, err)
		}

		return p, nil
	}

	built.Lock()
	defer built.Unlock()
	if built.path != "" {
		return built.path, nil
	}

	goTool, err := findGo()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "asynclspd-build-")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "asynclspd")
	args := []string{"build", "-o", path}
	if race() {
		args = append(args, "-race")
	}
	args = append(args, daemonPkg)

	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		_ = os.RemoveAll(dir)

		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "),
			err, out)
	}
	built.dir, built.path = dir, path

	return path, nil
}

// RemoveBuild deletes the binary Build made, if any. Call it when the
// process is done with daemons (TestMain, the end of the demo).
func RemoveBuild() error {
	built.Lock()
	defer built.Unlock()
	if built.dir == "" {
		return nil
	}
	err := os.RemoveAll(built.dir)
	built.dir, built.path = "", ""

	return err
}

// race reports whether Build adds -race.
func race() bool {
	switch os.Getenv(RaceEnv) {
	case "1":
		return true
	case "0":
		return false
	}

	return raceBuild
}

// findGo returns the go command: the one on $PATH, else $GOROOT's.
func findGo() (string, error) {
	if p, err := exec.LookPath("go"); err == nil {
		return p, nil
	}
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if checkExecutable(p) == nil {
			return p, nil
		}
	}

	return "", errors.New("building asynclspd: no go command on $PATH " +
		"or in $GOROOT/bin")
}

// checkExecutable reports why path is not an executable file, or nil.
func checkExecutable(path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	if info.IsDir() || info.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable", path)
	}

	return nil
}
