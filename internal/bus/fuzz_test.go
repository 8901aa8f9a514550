package bus

import (
	"errors"
	"testing"
)

// FuzzParseSubject: subjects come from the network (another LSP chooses
// them within its permissions), so parsing must never panic, must refuse
// with ErrInvalidSubject, and must accept only subjects the bus builds back
// the same.
func FuzzParseSubject(f *testing.F) {
	a, b := testKey(1), testKey(2)
	f.Add(DurableSubject(a, b, KindHoldOutcome))
	f.Add(RequestSubject(a, b, KindInvoiceRequest))
	f.Add("asynclsp.in...")
	f.Add("asynclsp.in." + a.String() + "." + b.String() + ".X")
	f.Fuzz(func(t *testing.T, subject string) {
		for _, prefix := range []string{durablePrefix, requestPrefix} {
			to, from, kind, err := parseSubject(prefix, subject)
			if err != nil {
				if !errors.Is(err, ErrInvalidSubject) {
					t.Fatalf("refused %q with an unnamed error: %v", subject, err)
				}
				continue
			}
			if kind.Validate() != nil || !to.valid() || !from.valid() {
				t.Fatalf("accepted %q with invalid parts", subject)
			}
			if rebuilt := prefix + to.String() + "." + from.String() + "." + string(kind); rebuilt != subject {
				t.Fatalf("accepted %q but it rebuilds as %q", subject, rebuilt)
			}
		}
	})
}
