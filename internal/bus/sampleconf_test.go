package bus

import (
	"bytes"
	"flag"
	"os"
	"reflect"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

var update = flag.Bool("update", false, "rewrite docs/nats/two-operators.conf from RenderServerConfig, and the fuzz seeds")

const sampleConfigPath = "../../docs/nats/two-operators.conf"

// sampleParams are the example operators of docs/nats/two-operators.conf.
// The NKeys are public keys whose seeds were thrown away: operators put in
// their own.
func sampleParams() ServerConfigParams {
	return ServerConfigParams{
		ServerName:      "asynclsp-nats-1",
		Listen:          "0.0.0.0:4222",
		StoreDir:        "/var/lib/nats",
		ProvisionerNKey: "UBZ7VR2LHDITEEUSSIP2PKZUVYHZIXDZUCGXQJLKBUQIE4FLXLUMNBP2",
		Members: []Member{
			{Operator: "operator alpha (hosts this server)", NodeKey: testKey(101), NKey: "UAV42HPPV2JMX47AK7GZF3GEER73GRONKUPBLEJLFBANTNLZRVCWLWKD"},
			{Operator: "operator beta", NodeKey: testKey(102), NKey: "UCDVEN7WGN5SHBX64SQDRGDLPHVF7LFF7ADDO6L6B3TTARECKRTAUPHF"},
		},
	}
}

// TestSampleConfigIsCurrent: the checked-in sample is what the code
// renders. Run with -update after changing the permissions.
func TestSampleConfigIsCurrent(t *testing.T) {
	got, err := RenderServerConfig(sampleParams())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(sampleConfigPath, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(sampleConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is stale: run go test ./internal/bus -run TestSampleConfigIsCurrent -update", sampleConfigPath)
	}
}

// TestSampleConfigLoads: nats-server accepts the sample as it is, and
// reads back exactly the permissions Permissions gives.
func TestSampleConfigLoads(t *testing.T) {
	opts, err := server.ProcessConfigFile(sampleConfigPath)
	if err != nil {
		t.Fatalf("nats-server rejects %s: %v", sampleConfigPath, err)
	}
	if !opts.JetStream || !opts.SyncAlways || opts.StoreDir != "/var/lib/nats" {
		t.Errorf("jetstream %v, sync always %v, store dir %q", opts.JetStream, opts.SyncAlways, opts.StoreDir)
	}
	want := map[string]*server.Permissions{sampleParams().ProvisionerNKey: ProvisionerPermissions()}
	for _, m := range sampleParams().Members {
		want[m.NKey] = Permissions(m.NodeKey)
	}
	if len(opts.Nkeys) != len(want) {
		t.Fatalf("%d users in the sample, want %d", len(opts.Nkeys), len(want))
	}
	for _, u := range opts.Nkeys {
		if u.Account == nil || u.Account.Name != accountName {
			t.Errorf("user %s not in account %s", u.Nkey, accountName)
		}
		if !reflect.DeepEqual(u.Permissions, want[u.Nkey]) {
			t.Errorf("user %s: permissions read back differ:\n got %+v\nwant %+v", u.Nkey, u.Permissions, want[u.Nkey])
		}
	}
}
