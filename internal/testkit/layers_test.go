package testkit_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

const module = "github.com/asynclsp/asynclsp/"

// floor is where a package of this module lives, as the README's
// Architecture section draws it: the ground floor (holdstore, onionmsg,
// internal/...), the roles (senderlsp, receiverlsp) and the top (cmd/,
// scenarios/).
func floor(pkg string) string {
	switch {
	case strings.HasPrefix(pkg, "holdstore"), strings.HasPrefix(pkg, "onionmsg"),
		strings.HasPrefix(pkg, "internal/"):
		return "ground"
	case strings.HasPrefix(pkg, "senderlsp"), strings.HasPrefix(pkg, "receiverlsp"):
		return "role"
	default:
		return "top"
	}
}

// role is the role a package belongs to ("senderlsp" for senderlsp/client).
func role(pkg string) string { return strings.SplitN(pkg, "/", 2)[0] }

// layerViolation says why pkg may not import imp, or "" if it may.
func layerViolation(pkg, imp string) string {
	switch {
	case imp == "internal/testkit" || strings.HasPrefix(imp, "internal/testkit/"):
		if !strings.HasPrefix(pkg, "internal/testkit") {
			return "the test kit is for tests only"
		}
	case floor(pkg) == "ground" && floor(imp) != "ground":
		return "the ground floor imports only the ground floor"
	case floor(pkg) == "role" && floor(imp) == "top":
		return "a role never imports the top floor"
	case floor(pkg) == "role" && floor(imp) == "role" && role(pkg) != role(imp):
		return "one role never imports the other"
	case strings.HasSuffix(pkg, "/client") && imp != "onionmsg":
		return "a wallet's client imports at most onionmsg"
	}
	return ""
}

// TestLayers holds every package's production imports to its floor, so the
// tree keeps reading the way the README draws it.
func TestLayers(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out, err := exec.Command(goBin, "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", module+"...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	packages := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		packages++
		for _, imp := range fields[1:] {
			if !strings.HasPrefix(imp, module) {
				continue
			}
			imp = strings.TrimPrefix(imp, module)
			if why := layerViolation(pkg, imp); why != "" {
				t.Errorf("%s imports %s: %s", pkg, imp, why)
			}
		}
	}
	if packages < 20 {
		t.Fatalf("go list saw %d packages; expected the whole module", packages)
	}
}

// The rule itself refuses what issue 13 moved out of internal/.
func TestLayerViolations(t *testing.T) {
	for _, c := range []struct{ pkg, imp string }{
		{"internal/daemon", "senderlsp"},
		{"internal/lspnet", "receiverlsp"},
		{"holdstore", "cmd/asynclspd/daemon"},
		{"senderlsp", "receiverlsp"},
		{"receiverlsp", "scenarios/lsp"},
		{"senderlsp", "internal/testkit"},
		{"senderlsp/client", "internal/lnd"},
	} {
		if layerViolation(c.pkg, c.imp) == "" {
			t.Errorf("%s importing %s passes the layer rule", c.pkg, c.imp)
		}
	}
	for _, c := range []struct{ pkg, imp string }{
		{"cmd/asynclspd/daemon", "senderlsp"},
		{"internal/lspnet", "internal/bus"},
		{"receiverlsp", "receiverlsp/client"},
		{"receiverlsp/client", "onionmsg"},
		{"scenarios/lsp", "senderlsp/client"},
	} {
		if why := layerViolation(c.pkg, c.imp); why != "" {
			t.Errorf("%s importing %s refused: %s", c.pkg, c.imp, why)
		}
	}
}
