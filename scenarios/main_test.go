package scenarios

import (
	"fmt"
	"os"
	"testing"

	"github.com/asynclsp/asynclsp/scenarios/lsp"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if err := lsp.RemoveBuild(); err != nil {
		fmt.Fprintln(os.Stderr, "removing the asynclspd build:", err)
	}
	os.Exit(code)
}
