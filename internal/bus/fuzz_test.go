package bus

import (
	"errors"
	"strings"
	"testing"

	"github.com/asynclsp/asynclsp/internal/testkit/fuzzcorpus"
)

// FuzzParseSubject: subjects come from the network (another LSP chooses
// them within its permissions), so parsing must never panic, must refuse
// with ErrInvalidSubject, and must accept only subjects the bus builds back
// the same. The seeds, in testdata/fuzz/FuzzParseSubject, are
// TestFuzzSeeds'.
func FuzzParseSubject(f *testing.F) {
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

// The seeds of FuzzParseSubject are current (-update rewrites them).
func TestFuzzSeeds(t *testing.T) {
	a, b := testKey(1), testKey(2)
	durable := DurableSubject(a, b, KindHoldOutcome)
	seed := func(name, subject string) fuzzcorpus.Seed {
		return fuzzcorpus.Seed{Name: name, Args: []any{subject}}
	}
	fuzzcorpus.Check(t, "FuzzParseSubject", []fuzzcorpus.Seed{
		seed("durable", durable),
		seed("request", RequestSubject(a, b, KindInvoiceRequest)),
		seed("held", DurableSubject(b, a, KindHeldHTLCAvailable)),
		seed("release", DurableSubject(a, b, KindReleaseHeldHTLC)),
		seed("empty-tokens", "asynclsp.in..."),
		seed("unknown-kind", "asynclsp.in."+a.String()+"."+b.String()+".X"),
		seed("upper-hex", strings.ToUpper(durable)),
		seed("short-key", strings.Replace(durable, a.String(), a.String()[:64], 1)),
		seed("wildcard", "asynclsp.in.*."+b.String()+".>"),
		seed("extra-token", durable+".x"),
	}, *update)
}
