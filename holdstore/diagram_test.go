package holdstore

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite fsm.md from the transition table")

const fsmHeader = `# The hold state machine

Generated from the transition table in state.go by
` + "`go test ./holdstore -run TestDiagramIsCurrent -update`" + `; a test fails when
this file and the table disagree.

`

// TestDiagramIsCurrent fails when fsm.md no longer matches the table.
func TestDiagramIsCurrent(t *testing.T) {
	want := fsmHeader + Diagram()
	if *update {
		if err := os.WriteFile("fsm.md", []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile("fsm.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Fatal("fsm.md is out of date: run go test ./holdstore -run TestDiagramIsCurrent -update")
	}
	for _, st := range States {
		if !strings.Contains(string(got), string(st)) {
			t.Fatalf("diagram lacks %s", st)
		}
	}
}
