package scenarios

import (
	"testing"
	"time"
)

func TestMedianAndRatio(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	for _, tc := range []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(7), 7 * time.Millisecond},
		{ms(300, 100, 200), 200 * time.Millisecond},
		{ms(400, 100, 300, 200), 250 * time.Millisecond},
	} {
		if got := Median(tc.in); got != tc.want {
			t.Errorf("Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	in := ms(3, 1, 2)
	Median(in)
	if in[0] != 3*time.Millisecond {
		t.Fatal("Median sorted its argument")
	}

	m := &Measurement{Async: ms(300, 330, 290), Direct: ms(200, 210, 190)}
	if r := m.Ratio(); r != 1.5 {
		t.Fatalf("Ratio = %v", r)
	}
	if r := (&Measurement{Async: ms(1)}).Ratio(); r != 0 {
		t.Fatalf("Ratio without direct payments = %v", r)
	}
}

func TestBalances(t *testing.T) {
	before := Balances{"alice": 1_000_000, "bob": 500_000, "dave": 0}
	after := Balances{"alice": 974_000, "bob": 500_900, "dave": 25_000,
		"carol": 100}
	d := after.Minus(before)
	want := Balances{"alice": -26_000, "bob": 900, "dave": 25_000}
	if !d.Equal(want) {
		t.Fatalf("Minus = %v, want %v", d, want)
	}
	if d.Equal(Balances{"alice": -26_000, "bob": 900}) ||
		d.Equal(Balances{"alice": -26_000, "bob": 901, "dave": 25_000}) {
		t.Fatal("Equal ignores a node or an amount")
	}
	if s := d.String(); s != "alice -26000, bob +900, dave +25000" {
		t.Fatalf("String = %q", s)
	}

	s := Settled(25_000_000, 26_000, 1_025)
	var sum int64
	for _, v := range s {
		sum += v
	}
	if sum != 0 || s["alice"] != -25_026_000 || s["bob"] != 24_975 ||
		s["carol"] != 1_025 || s["dave"] != 25_000_000 {
		t.Fatalf("Settled = %v", s)
	}
}

// TestTenths: the successes are split into ten equal counts in time order,
// each timed from the end of the one before (the first from the start).
func TestTenths(t *testing.T) {
	start := time.Unix(1000, 0)
	var at []time.Time
	for i := 20; i >= 1; i-- { // out of order, as a stream may tell them
		at = append(at, start.Add(time.Duration(i)*time.Second))
	}
	got := tenths(start, at)
	if len(got) != 10 {
		t.Fatalf("%d tenths, want 10", len(got))
	}
	for i, th := range got {
		if th.Count != 2 || th.Took != 2*time.Second {
			t.Errorf("tenth %d = %+v, want 2 in 2s", i, th)
		}
	}
	if tenths(start, at[:9]) != nil {
		t.Error("tenths of 9 successes, want none")
	}
}

// make scale with no flags runs: its defaults fit the route's channels.
func TestScaleDefaultsValid(t *testing.T) {
	cfg := ScaleConfig{N: DefaultScaleN}.withDefaults()
	if err := cfg.validate(); err != nil {
		t.Fatalf("make scale's defaults: %v", err)
	}
	if cfg.Direct == 0 || cfg.HeldDirect == 0 {
		t.Fatalf("defaults measure no direct payments: %+v", cfg)
	}
}
