package bus

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestParseNodeKey(t *testing.T) {
	k := testKey(1)
	got, err := ParseNodeKey(k.String())
	if err != nil || got != k {
		t.Fatalf("round trip: %v, %v", got, err)
	}
	for _, s := range []string{
		"",
		k.String()[:64],
		strings.ToUpper(k.String()),
		"04" + k.String()[2:],
		"zz" + k.String()[2:],
	} {
		if _, err := ParseNodeKey(s); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("ParseNodeKey(%q) = %v, want ErrInvalidKey", s, err)
		}
	}
}

func TestKindValidate(t *testing.T) {
	for _, k := range []Kind{KindInvoiceRequest, KindHeldHTLCAvailable, KindReleaseHeldHTLC, KindHoldOutcome, "a", "x_1"} {
		if err := k.Validate(); err != nil {
			t.Errorf("%q: %v", k, err)
		}
	}
	for _, k := range []Kind{"", "a.b", "*", ">", "A", "a b", Kind(strings.Repeat("a", 65))} {
		if err := k.Validate(); !errors.Is(err, ErrInvalidKind) {
			t.Errorf("%q: got %v, want ErrInvalidKind", k, err)
		}
	}
}

// TestSubjectRoundTrip: parsing what DurableSubject and RequestSubject
// build gives back the keys and kind, for any keys and kinds.
func TestSubjectRoundTrip(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		to := NodeKey(rapid.SliceOfN(rapid.Byte(), 33, 33).Draw(t, "to"))
		from := NodeKey(rapid.SliceOfN(rapid.Byte(), 33, 33).Draw(t, "from"))
		to[0] = 2 + to[0]%2
		from[0] = 2 + from[0]%2
		kind := Kind(rapid.StringMatching(`[a-z0-9_]{1,64}`).Draw(t, "kind"))
		for prefix, subject := range map[string]string{
			durablePrefix: DurableSubject(to, from, kind),
			requestPrefix: RequestSubject(to, from, kind),
		} {
			gotTo, gotFrom, gotKind, err := parseSubject(prefix, subject)
			if err != nil || gotTo != to || gotFrom != from || gotKind != kind {
				t.Fatalf("%s: got %s %s %s %v", subject, gotTo, gotFrom, gotKind, err)
			}
		}
		id := MsgID(rapid.SliceOfN(rapid.Byte(), 16, 16).Draw(t, "id"))
		if got, ok := parseNatsMsgID(from, natsMsgID(from, id)); !ok || got != id {
			t.Fatalf("message id round trip: %s %v", got, ok)
		}
		if to != from {
			if _, ok := parseNatsMsgID(to, natsMsgID(from, id)); ok {
				t.Fatal("message id of one sender read as another's")
			}
		}
	})
}

func TestParseSubjectRejects(t *testing.T) {
	a, b := testKey(1).String(), testKey(2).String()
	for _, s := range []string{
		"asynclsp.req." + a + "." + b + ".x",
		"asynclsp.in." + a + "." + b,
		"asynclsp.in." + a + ".x.y",
		"asynclsp.in." + a + "." + b + ".bad.kind",
		"asynclsp.in." + a + "." + b + ".",
	} {
		if _, _, _, err := parseSubject(durablePrefix, s); !errors.Is(err, ErrInvalidSubject) {
			t.Errorf("%q: got %v, want ErrInvalidSubject", s, err)
		}
	}
}

func TestDropReason(t *testing.T) {
	for _, c := range []struct {
		err    error
		reason string
		drop   bool
	}{
		{nil, "", false},
		{errors.New("busy"), "", false},
		{Drop(ReasonMalformed, errors.New("bad tlv")), ReasonMalformed, true},
		{fmt.Errorf("wrapped: %w", Drop(ReasonMisdirected, nil)), ReasonMisdirected, true},
		{fmt.Errorf("%w: no reason", ErrDrop), ReasonUnspecified, true},
		{Drop("made_up", nil), ReasonOther, true},
	} {
		reason, drop := dropReason(c.err)
		if reason != c.reason || drop != c.drop {
			t.Errorf("%v: got %q %v, want %q %v", c.err, reason, drop, c.reason, c.drop)
		}
	}
	cause := errors.New("cause")
	if err := Drop(ReasonMalformed, cause); !errors.Is(err, cause) || !errors.Is(err, ErrDrop) {
		t.Error("Drop hides its cause or ErrDrop")
	}
}

func TestDefaultBackoff(t *testing.T) {
	want := map[uint64]time.Duration{0: time.Second, 1: time.Second, 2: 2 * time.Second, 3: 4 * time.Second, 9: 256 * time.Second, 10: 5 * time.Minute, 1000: 5 * time.Minute}
	for n, d := range want {
		if got := defaultBackoff(n); got != d {
			t.Errorf("defaultBackoff(%d) = %v, want %v", n, got, d)
		}
	}
}
