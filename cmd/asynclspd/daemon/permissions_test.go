package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/bus"
	"github.com/asynclsp/asynclsp/internal/testkit"
	"github.com/lightningnetwork/lnd/routing/route"
	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// permNATS is a nats-server shared by LSPs of different operators, loaded
// from the configuration bus.RenderServerConfig writes (the one
// docs/nats/two-operators.conf shows), with each member's inbound stream
// provisioned by the hosting operator.
type permNATS struct {
	url string

	// seed are the members' NKey seed files, in the order of their keys.
	seed []string
}

// newNKeyUser makes an NKey user and writes its seed to a file.
func newNKeyUser(t *testing.T) (pub, seedFile string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, err := kp.Seed()
	if err != nil {
		t.Fatal(err)
	}
	if pub, err = kp.PublicKey(); err != nil {
		t.Fatal(err)
	}
	seedFile = filepath.Join(t.TempDir(), "lsp.nk")
	if err := os.WriteFile(seedFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	return pub, seedFile
}

// startPermissionedNATS starts the server for the LSPs with the node keys
// given, and provisions their streams.
func startPermissionedNATS(t *testing.T, keys ...route.Vertex) *permNATS {
	t.Helper()
	provPub, provSeed := newNKeyUser(t)
	p := &permNATS{}
	var members []bus.Member
	for i, k := range keys {
		pub, seed := newNKeyUser(t)
		p.seed = append(p.seed, seed)
		members = append(members, bus.Member{Operator: fmt.Sprintf("operator %d", i+1),
			NodeKey: bus.NodeKey(k), NKey: pub})
	}
	conf, err := bus.RenderServerConfig(bus.ServerConfigParams{
		ServerName: "asynclsp-shared", Listen: "127.0.0.1:4222",
		StoreDir: t.TempDir(), ProvisionerNKey: provPub, Members: members})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "nats.conf")
	writeFile(t, path, string(conf))
	opts, err := natsserver.ProcessConfigFile(path)
	if err != nil {
		t.Fatalf("nats-server refuses the rendered configuration: %v", err)
	}
	opts.Port, opts.NoSigs = natsserver.RANDOM_PORT, true
	srv, err := natsserver.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("permissioned nats-server not ready")
	}
	p.url = srv.ClientURL()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	prov, err := bus.ConnectProvisioner(ctx, bus.ClientConfig{URLs: []string{p.url},
		NKeySeedFile: provSeed, Logger: testkit.Quiet()})
	if err != nil {
		t.Fatalf("provisioner: %v", err)
	}
	defer prov.Close()
	for _, k := range keys {
		if err := prov.EnsureStream(ctx, bus.NodeKey(k), bus.StreamConfig{}); err != nil {
			t.Fatalf("provision the stream of %s: %v", k, err)
		}
	}
	return p
}

// checkIsolation connects with the credentials of member self, as an
// operator could with any client, and checks that it can neither read
// victim's inbound subjects or stream nor publish as victim.
func (p *permNATS) checkIsolation(t *testing.T, member int, victim, self route.Vertex) {
	t.Helper()
	errs := make(chan error, 64)
	auth, err := nats.NkeyOptionFromSeed(p.seed[member])
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(p.url, auth,
		nats.CustomInboxPrefix("_INBOX."+self.String()),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case errs <- err:
			default:
			}
		}))
	if err != nil {
		t.Fatalf("connect with member %d's credentials: %v", member, err)
	}
	defer nc.Close()
	v, s := bus.NodeKey(victim), bus.NodeKey(self)

	inbound := "asynclsp.in." + v.String() + ".>"
	if _, err := nc.SubscribeSync(inbound); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, errs, "Subscription", inbound)

	next := "$JS.API.CONSUMER.MSG.NEXT." + bus.StreamName(v) + "." + bus.ConsumerName
	if _, err := nc.Request(next, []byte(`{"batch":1}`), time.Second); err == nil {
		t.Fatal("pulled from another LSP's stream")
	}
	expectViolation(t, errs, "Publish", next)

	asVictim := bus.DurableSubject(s, v, bus.KindReleaseHeldHTLC)
	if err := nc.Publish(asVictim, []byte("forged")); err != nil {
		t.Fatal(err)
	}
	expectViolation(t, errs, "Publish", asVictim)
}

// expectViolation waits for the server's permissions violation for op
// ("Publish" or "Subscription") on subject.
func expectViolation(t *testing.T, errs <-chan error, op, subject string) {
	t.Helper()
	want := fmt.Sprintf("Permissions Violation for %s to %q", op, subject)
	timeout := time.After(5 * time.Second)
	for {
		select {
		case err := <-errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(err.Error(), want) {
				return
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s to %q", op, subject)
		}
	}
}

// TestPermissionsBetweenOperators: bob and carol, each run by its own
// operator, connect to a shared server with the permissions of
// docs/nats/two-operators.conf, each with its own NKey seed file as the
// daemon's nats.nkeyseedfile gives it. Payments flow both ways through
// the server; and neither LSP's credentials can read the other's inbound
// traffic or publish as the other.
func TestPermissionsBetweenOperators(t *testing.T) {
	_, bobKey := testkit.Key(bobIndex)
	_, carolKey := testkit.Key(carolIndex)
	perms := startPermissionedNATS(t, route.Vertex(bobKey), route.Vertex(carolKey))
	e := newLSPEnv(t, envOptions{urls: []string{perms.url}, replicas: 1,
		ackWait: 5 * time.Second, seeds: map[int]string{bobIndex: perms.seed[0],
			carolIndex: perms.seed[1]}})
	e.upload(3)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); e.releaseLoop(ctx, 3) }()
	var holds []holdstore.ID
	for i := range 3 {
		h, err := e.createAndPay(ctx, fmt.Sprintf("perm-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		holds = append(holds, h.ID)
	}
	eventually(t, 30*time.Second, "every hold settled", func() error {
		for _, id := range holds {
			h, err := e.bob.store.Get(ctx, id)
			if err != nil {
				return err
			}
			if h.State != holdstore.StateSettled {
				return fmt.Errorf("hold %s is %s", id, h.State)
			}
		}
		return nil
	})
	cancel()
	<-done
	for _, l := range []*lsp{e.bob, e.carol} {
		if n := dropped(t, l); n != 0 {
			t.Errorf("%s's bus dropped %v messages", l.key.String()[:8], n)
		}
	}

	perms.checkIsolation(t, 1, route.Vertex(bobKey), route.Vertex(carolKey))
	perms.checkIsolation(t, 0, route.Vertex(carolKey), route.Vertex(bobKey))
}
