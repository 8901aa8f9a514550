package demo

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestSat(t *testing.T) {
	for _, tc := range []struct {
		msat int64
		want string
	}{
		{0, "0 sat"},
		{25_000_000, "25,000 sat"},
		{1_025, "1.025 sat"},
		{-25_026_000, "-25,026 sat"},
		{9_996_554_975, "9,996,554.975 sat"},
		{-999, "-0.999 sat"},
	} {
		if got := sat(tc.msat); got != tc.want {
			t.Errorf("sat(%d) = %q, want %q", tc.msat, got, tc.want)
		}
	}
	if got := signedSat(24_975); got != "+24.975 sat" {
		t.Errorf("signedSat = %q", got)
	}
	if got := millis(221400 * time.Microsecond); got != "221 ms" {
		t.Errorf("millis = %q", got)
	}
}

func TestTellerCountsFailedChecks(t *testing.T) {
	var buf bytes.Buffer
	tl := newTeller(&buf)
	tl.say("step %d", 1)
	if !tl.check(true, "holds") || tl.check(false, "breaks %s", "here") {
		t.Fatal("check returned the wrong verdict")
	}
	out := buf.String()
	if len(tl.failed) != 1 || tl.failed[0] != "breaks here" ||
		!strings.Contains(out, "✓ holds") || !strings.Contains(out, "✗ breaks here") ||
		!strings.Contains(out, "s] step 1") {
		t.Fatalf("failed %v, output:\n%s", tl.failed, out)
	}
}
