package holdstore

import (
	"fmt"
	"strings"
)

// Diagram renders the transition table as a Mermaid state diagram. fsm.md
// holds its output, and a test keeps the two the same.
func Diagram() string {
	var b strings.Builder
	b.WriteString("```mermaid\nstateDiagram-v2\n")
	b.WriteString("    [*] --> CREATED\n")
	for _, from := range States {
		for _, to := range transitions[from] {
			fmt.Fprintf(&b, "    %s --> %s\n", from, to)
		}
	}
	for _, st := range States {
		if st.Final() {
			fmt.Fprintf(&b, "    %s --> [*]\n", st)
		}
	}
	b.WriteString("```\n")
	return b.String()
}

// MailboxDiagram renders the mailbox item's state machine as a Mermaid
// state diagram; mailbox.md holds its output, kept current by a test.
func MailboxDiagram() string {
	var b strings.Builder
	b.WriteString("```mermaid\nstateDiagram-v2\n")
	fmt.Fprintf(&b, "    [*] --> %s\n    [*] --> %s\n", MailboxPending, MailboxRefused)
	for _, from := range MailboxStates {
		for _, to := range mailboxTransitions[from] {
			fmt.Fprintf(&b, "    %s --> %s\n", from, to)
		}
	}
	for _, st := range MailboxStates {
		if st.Final() {
			fmt.Fprintf(&b, "    %s --> [*]\n", st)
		}
	}
	b.WriteString("```\n")
	return b.String()
}
