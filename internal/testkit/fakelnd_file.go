package testkit

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/asynclsp/asynclsp/internal/lnd"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lntypes"
)

// fakeState is what a FakeLnd persists: what a real lnd keeps across a
// crash of the daemon that drives it.
type fakeState struct {
	Height   uint32
	Invoices map[string]*lnd.Invoice
	Payments map[string]*lnd.Payment
	Secrets  map[string]lntypes.Preimage
	Scripts  map[string][]Outcome
	Channels []lnd.Channel
	Sent     []lnd.SendPaymentRequest
	AutoPay  bool
	Default  Outcome

	// AddIndex and HTLCIndex are the last add index and the next HTLC
	// index.
	AddIndex  uint64
	HTLCIndex uint64
}

// Persist makes the fake write its state to path after every change
// (atomically: a crash leaves the old or the new state), so that it
// outlives a process the test kills.
func (f *FakeLnd) Persist(path string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.file = path
	return f.saveErr()
}

func (f *FakeLnd) save() {
	if err := f.saveErr(); err != nil {
		panic(fmt.Sprintf("fake lnd: save: %v", err))
	}
}

func (f *FakeLnd) saveErr() error {
	if f.file == "" {
		return nil
	}
	st := fakeState{
		Height: f.height, Invoices: map[string]*lnd.Invoice{},
		Payments: map[string]*lnd.Payment{}, Secrets: map[string]lntypes.Preimage{},
		Scripts: map[string][]Outcome{}, Channels: f.channels, Sent: f.sent,
		AutoPay: f.autoPay, Default: f.otherwise,
		AddIndex: f.addIndex, HTLCIndex: f.htlcIndex,
	}
	for h, v := range f.invoices {
		st.Invoices[h.String()] = v
	}
	for h, v := range f.payments {
		st.Payments[h.String()] = v
	}
	for h, v := range f.secrets {
		st.Secrets[h.String()] = v
	}
	for h, v := range f.scripts {
		st.Scripts[h.String()] = v
	}
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := f.file + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, f.file)
}

// LoadFakeLnd reads a fake persisted with Persist and keeps persisting to
// the same file. Outbound payments still in flight are finished as their
// script says (success by default): the network resolved them while the
// process that drove them was dead.
func LoadFakeLnd(clk clock.Clock, path string) (*FakeLnd, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var st fakeState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	f := NewFakeLnd(clk, [33]byte{})
	f.height, f.channels, f.sent = st.Height, st.Channels, st.Sent
	f.autoPay, f.otherwise = st.AutoPay, st.Default
	f.addIndex, f.htlcIndex = st.AddIndex, st.HTLCIndex
	parse := func(s string) lntypes.Hash {
		h, err := lntypes.MakeHashFromStr(s)
		if err != nil {
			panic(err)
		}
		return h
	}
	for k, v := range st.Invoices {
		f.invoices[parse(k)] = v
	}
	for k, v := range st.Payments {
		f.payments[parse(k)] = v
	}
	for k, v := range st.Secrets {
		f.secrets[parse(k)] = v
	}
	for k, v := range st.Scripts {
		f.scripts[parse(k)] = v
	}
	for h, p := range f.payments {
		if p.Status == lnd.PaymentInFlight {
			o := f.otherwise
			if q := f.scripts[h]; len(q) > 0 {
				o, f.scripts[h] = q[0], q[1:]
			}
			o.Hang = false
			f.finishPayment(p, o)
		}
	}
	f.file = path
	return f, f.saveErr()
}
