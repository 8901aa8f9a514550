package lnd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/lightningnetwork/lnd/lnrpc/verrpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// The messages are lnd v0.21.1's, copied from its source (invoices/errors.go,
// payments/db/errors.go, rpcperms/interceptor.go, chainrpc).
func TestMapError(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      error
		transient bool
	}{
		{"lookup unknown", status.Error(codes.NotFound,
			"unable to locate invoice"), ErrInvoiceNotFound, false},
		{"no invoices yet", status.Error(codes.NotFound,
			"there are no existing invoices"), ErrInvoiceNotFound,
			false},
		{"cancel unknown", status.Error(codes.Unknown,
			"unable to locate invoice"), ErrInvoiceNotFound, false},
		{"duplicate hold invoice", status.Error(codes.Unknown,
			"invoice with payment hash already exists"),
			ErrInvoiceExists, false},
		{"cancel settled", status.Error(codes.Unknown,
			"invoice already settled"), ErrInvoiceSettled, false},
		{"settle canceled", status.Error(codes.Unknown,
			"invoice already canceled"), ErrInvoiceCanceled, false},
		{"settle open", status.Error(codes.Unknown,
			"invoice still open"), ErrInvoiceOpen, false},
		{"send paid", status.Error(codes.AlreadyExists,
			"invoice is already paid"), ErrPaymentExists, false},
		{"send in flight", status.Error(codes.AlreadyExists,
			"payment is in transition"), ErrPaymentExists, false},
		{"send exists, other text", status.Error(codes.AlreadyExists,
			"something new"), ErrPaymentExists, false},
		{"track unknown", status.Error(codes.NotFound,
			"payment isn't initiated"), ErrPaymentNotFound, false},
		{"connection refused", status.Error(codes.Unavailable,
			"connection error: connection refused"), ErrUnavailable,
			true},
		{"rpc starting", status.Error(codes.Unknown, "the RPC server "+
			"is in the process of starting up, but not yet ready "+
			"to accept calls"), ErrUnavailable, true},
		{"waiting to start", status.Error(codes.Unknown, "waiting to "+
			"start, RPC services not available"), ErrUnavailable,
			true},
		{"notifier starting", status.Error(codes.Unavailable, "chain "+
			"notifier RPC is still in the process of starting"),
			ErrUnavailable, true},
		{"registry shutting down", status.Error(codes.Unknown,
			"invoice registry shutting down"), ErrUnavailable, true},
		{"notifier stopping", status.Error(codes.Unknown, "chainntnfs: "+
			"system interrupt while attempting to register for "+
			"block epoch notification."), ErrUnavailable, true},
		{"stream ended", io.EOF, ErrUnavailable, true},
		{"wrapped by lndclient", fmt.Errorf("error subscribing to lnd "+
			"wallet state: %w", status.Error(codes.Unavailable,
			"connection refused")), ErrUnavailable, true},
		{"other", status.Error(codes.Unknown, "amount must be "+
			"greater than 0"), nil, false},
		{"invalid argument", status.Error(codes.InvalidArgument,
			"bad"), nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := mapError("Op", tc.err)
			if tc.want != nil && !errors.Is(got, tc.want) {
				t.Fatalf("mapError = %v, want %v", got, tc.want)
			}
			if tc.want == nil && classify(tc.err) != nil {
				t.Fatalf("classify = %v, want none",
					classify(tc.err))
			}
			if !errors.Is(got, tc.err) {
				t.Fatalf("lnd's error is not wrapped: %v", got)
			}
			if !strings.HasPrefix(got.Error(), "lnd Op: ") {
				t.Fatalf("no operation in %q", got)
			}
			if isTransient(tc.err) != tc.transient {
				t.Fatalf("isTransient = %v, want %v",
					!tc.transient, tc.transient)
			}
		})
	}
}

func TestMapErrorKeepsContextErrors(t *testing.T) {
	for _, err := range []error{context.Canceled,
		context.DeadlineExceeded, ErrClosed} {

		got := mapError("Op", err)
		if !errors.Is(got, err) || errors.Is(got, ErrUnavailable) {
			t.Fatalf("mapError(%v) = %v", err, got)
		}
	}
	if mapError("Op", nil) != nil {
		t.Fatal("mapError(nil) != nil")
	}
}

func TestCheckVersion(t *testing.T) {
	allTags := []string{"signrpc", "walletrpc", "chainrpc", "invoicesrpc"}
	tests := []struct {
		name    string
		v       *verrpc.Version
		wantErr string
	}{
		{"v0.21.0", &verrpc.Version{AppMinor: 21, BuildTags: allTags}, ""},
		{"v0.21.1", &verrpc.Version{AppMinor: 21, AppPatch: 1,
			BuildTags: allTags}, ""},
		{"v1.0.0", &verrpc.Version{AppMajor: 1, BuildTags: allTags}, ""},
		{"v0.20.1", &verrpc.Version{AppMinor: 20, AppPatch: 1,
			BuildTags: allTags}, "too old"},
		{"no invoicesrpc", &verrpc.Version{AppMinor: 21,
			BuildTags: []string{"signrpc", "chainrpc"}},
			`"invoicesrpc" (needed for hold invoices: AddHoldInvoice`},
		{"no signrpc, no chainrpc", &verrpc.Version{AppMinor: 21,
			BuildTags: []string{"invoicesrpc"}},
			`"signrpc" (needed for SignMessage with the node key ` +
				`(SignTagged)), "chainrpc" (needed for ` +
				`RegisterBlockEpochNtfn`},
		{"no version", nil, "did not report"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkVersion(tc.v)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrIncompatible) ||
				!strings.Contains(err.Error(), tc.wantErr) {

				t.Fatalf("err %v, want ErrIncompatible with %q",
					err, tc.wantErr)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	ok := Config{
		Host: "127.0.0.1:10009", TLSCertPath: "tls.cert",
		MacaroonPath: "admin.macaroon", Network: "regtest",
	}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		change func(*Config)
	}{
		{"no host", func(c *Config) { c.Host = "" }},
		{"no cert", func(c *Config) { c.TLSCertPath = "" }},
		{"no macaroon", func(c *Config) { c.MacaroonPath = "" }},
		{"two macaroons", func(c *Config) { c.MacaroonDir = "dir" }},
		{"bad network", func(c *Config) { c.Network = "bitcoin" }},
		{"negative", func(c *Config) { c.RetryFor = -time.Second }},
		{"backoffs", func(c *Config) {
			c.MinBackoff, c.MaxBackoff = time.Minute, time.Second
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.change(&cfg)
			if err := cfg.Validate(); !errors.Is(err,
				ErrInvalidRequest) {

				t.Fatalf("Validate = %v, want ErrInvalidRequest",
					err)
			}
		})
	}

	d := ok.withDefaults()
	if d.RPCTimeout != DefaultRPCTimeout || d.RetryFor != DefaultRetryFor ||
		d.Clock == nil || d.Logger == nil {

		t.Fatalf("defaults not applied: %+v", d)
	}
}

func TestBackoffDelay(t *testing.T) {
	minD, maxD := 100*time.Millisecond, time.Second
	want := []time.Duration{100, 200, 400, 800, 1000, 1000}
	for attempt, w := range want {
		if got := backoffDelay(minD, maxD, attempt); got !=
			w*time.Millisecond {

			t.Fatalf("attempt %d: %v, want %v", attempt, got,
				w*time.Millisecond)
		}
	}
	if got := backoffDelay(minD, maxD, 1<<30); got != maxD {
		t.Fatalf("huge attempt: %v", got)
	}
}

func TestCheckTag(t *testing.T) {
	for _, tag := range []string{"", "BIP0340/challenge", "TapSighash"} {
		if err := checkTag([]byte(tag)); !errors.Is(err,
			ErrInvalidRequest) {

			t.Fatalf("tag %q: %v", tag, err)
		}
	}
	if err := checkTag([]byte("asynclsp/release_held_htlc/v1")); err != nil {
		t.Fatal(err)
	}
}

func TestBugsOf(t *testing.T) {
	fixed := KnownBugs
	defer func() { KnownBugs = fixed }()
	for _, tc := range []struct {
		v    *verrpc.Version
		want int
	}{
		{&verrpc.Version{AppMinor: 19, AppPatch: 3}, 0},
		{&verrpc.Version{AppMinor: 20}, 1},
		{&verrpc.Version{AppMinor: 21, AppPatch: 1}, 1},
		{&verrpc.Version{AppMinor: 21, AppPatch: 2}, 1},
		{nil, 0},
	} {
		if got := BugsOf(tc.v); len(got) != tc.want {
			t.Errorf("BugsOf(%v) = %v, want %d", tc.v, got, tc.want)
		}
	}

	// Once a fixed release is known, it and later ones are not warned of.
	KnownBugs = []KnownBug{{Name: "x", From: &verrpc.Version{AppMinor: 20},
		Fixed: &verrpc.Version{AppMinor: 21, AppPatch: 3}}}
	for v, want := range map[*verrpc.Version]int{
		{AppMinor: 21, AppPatch: 2}: 1,
		{AppMinor: 21, AppPatch: 3}: 0,
		{AppMinor: 22}:              0,
	} {
		if got := BugsOf(v); len(got) != want {
			t.Errorf("with a fix: BugsOf(%v) = %v, want %d", v, got, want)
		}
	}
}
