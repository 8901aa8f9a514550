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

const mailboxHeader = `# The mailbox item state machine (receiver LSP)

Generated from the table in receiver_mailbox.go by
` + "`go test ./holdstore -run TestDiagramIsCurrent -update`" + `; a test fails when
this file and the table disagree.

`

// TestDiagramIsCurrent fails when fsm.md or mailbox.md no longer matches its
// table.
func TestDiagramIsCurrent(t *testing.T) {
	for _, d := range []struct {
		file, want string
		states     []string
	}{
		{"fsm.md", fsmHeader + Diagram(), stateNames(States)},
		{"mailbox.md", mailboxHeader + MailboxDiagram(), stateNames(MailboxStates)},
	} {
		if *update {
			if err := os.WriteFile(d.file, []byte(d.want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(d.file)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != d.want {
			t.Fatalf("%s is out of date: run go test ./holdstore -run TestDiagramIsCurrent -update", d.file)
		}
		for _, st := range d.states {
			if !strings.Contains(string(got), st) {
				t.Fatalf("%s lacks %s", d.file, st)
			}
		}
	}
}

func stateNames[S ~string](states []S) []string {
	var names []string
	for _, s := range states {
		names = append(names, string(s))
	}
	return names
}
