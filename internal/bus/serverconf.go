package bus

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// ServerConfigParams describes a nats-server shared by several LSPs.
type ServerConfigParams struct {
	// ServerName names the server (JetStream needs a stable name).
	ServerName string

	// Listen is the client listen address, host:port.
	Listen string

	// StoreDir is where JetStream keeps its files.
	StoreDir string

	// ProvisionerNKey is the public user NKey (U...) of the hosting
	// operator's provisioner, which creates the LSPs' streams.
	ProvisionerNKey string

	// Members are the LSPs allowed on the server.
	Members []Member
}

// Member is one LSP allowed on a shared server.
type Member struct {
	// Operator is a human label, written as a comment.
	Operator string

	// NodeKey is the LSP's Lightning node key: its identity in subjects.
	NodeKey NodeKey

	// NKey is the public user NKey (U...) the LSP connects with. It is a
	// NATS credential, unrelated to the node key.
	NKey string
}

// accountName is the account every asynclsp user lives in.
const accountName = "ASYNCLSP"

// RenderServerConfig writes a nats-server configuration file for params:
// one account with JetStream, the provisioner, and one NKey user per LSP
// with Permissions(NodeKey). docs/nats/two-operators.conf is its output,
// and the tests load what it renders, so the sample and the code cannot
// drift apart.
func RenderServerConfig(p ServerConfigParams) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("# nats-server configuration for asynclsp LSPs run by different operators.\n")
	w("# Rendered by internal/bus RenderServerConfig; see README.md next to it.\n\n")
	w("server_name: %s\n", quote(p.ServerName))
	w("listen: %s\n\n", quote(p.Listen))
	w("%s\n", tlsStanza)
	w("jetstream {\n")
	w("  store_dir: %s\n", quote(p.StoreDir))
	w("  # fsync every write before the PubAck: an acknowledged message\n")
	w("  # survives a power cut.\n")
	w("  sync_interval: always\n")
	w("}\n\n")
	w("accounts {\n")
	w("  %s {\n", accountName)
	w("    jetstream: enabled\n")
	w("    users: [\n")
	w("      # The hosting operator's provisioner: creates and updates every\n")
	w("      # LSP's inbound stream, nothing else.\n")
	writeUser(&b, p.ProvisionerNKey, ProvisionerPermissions())
	for _, m := range p.Members {
		w("      # %s: LSP node key %s\n", m.Operator, m.NodeKey)
		writeUser(&b, m.NKey, Permissions(m.NodeKey))
	}
	w("    ]\n")
	w("  }\n")
	w("}\n")
	return b.Bytes(), nil
}

// tlsStanza is commented out: the operator fills in real paths.
const tlsStanza = `# TLS: required as soon as any LSP connects from another machine (asynclspd
# refuses plain text to a non-loopback host). Fill in and uncomment.
# tls {
#   cert_file: "/etc/nats/tls/server-cert.pem"   # server certificate chain
#   key_file:  "/etc/nats/tls/server-key.pem"    # its private key
#   # To also require client certificates (mutual TLS), add the CA that
#   # signs them and turn verification on:
#   # ca_file: "/etc/nats/tls/client-ca.pem"
#   # verify: true
#   timeout: 2
# }
`

func writeUser(b *bytes.Buffer, nkey string, p *server.Permissions) {
	fmt.Fprintf(b, "      {\n        nkey: %s\n        permissions: {\n", quote(nkey))
	writeSubjects(b, "publish", p.Publish)
	writeSubjects(b, "subscribe", p.Subscribe)
	if p.Response != nil {
		fmt.Fprintf(b, "          allow_responses: { max: %d, expires: %s }\n",
			p.Response.MaxMsgs, quote(p.Response.Expires.String()))
	}
	b.WriteString("        }\n      }\n")
}

func writeSubjects(b *bytes.Buffer, name string, sp *server.SubjectPermission) {
	if sp == nil {
		return
	}
	fmt.Fprintf(b, "          %s: {\n", name)
	writeList(b, "allow", sp.Allow)
	writeList(b, "deny", sp.Deny)
	b.WriteString("          }\n")
}

func writeList(b *bytes.Buffer, name string, subjects []string) {
	if len(subjects) == 0 {
		return
	}
	fmt.Fprintf(b, "            %s: [\n", name)
	for _, s := range subjects {
		fmt.Fprintf(b, "              %s\n", quote(s))
	}
	b.WriteString("            ]\n")
}

// quote writes a double-quoted configuration string. Quoting keeps "$JS..."
// from being read as a variable reference.
func quote(s string) string { return `"` + s + `"` }

func (p ServerConfigParams) validate() error {
	for name, v := range map[string]string{
		"ServerName": p.ServerName, "Listen": p.Listen, "StoreDir": p.StoreDir,
	} {
		if v == "" || strings.ContainsAny(v, "\"\n\\") {
			return fmt.Errorf("%w: %s %q", ErrConfig, name, v)
		}
	}
	if !nkeys.IsValidPublicUserKey(p.ProvisionerNKey) {
		return fmt.Errorf("%w: ProvisionerNKey %q is not a public user NKey", ErrConfig, p.ProvisionerNKey)
	}
	seen := map[NodeKey]bool{}
	seenNKey := map[string]bool{p.ProvisionerNKey: true}
	for _, m := range p.Members {
		if !m.NodeKey.valid() || seen[m.NodeKey] {
			return fmt.Errorf("%w: member %q: node key %s invalid or repeated", ErrConfig, m.Operator, m.NodeKey)
		}
		seen[m.NodeKey] = true
		if !nkeys.IsValidPublicUserKey(m.NKey) || seenNKey[m.NKey] {
			return fmt.Errorf("%w: member %q: NKey %q is not a public user NKey or is repeated", ErrConfig, m.Operator, m.NKey)
		}
		seenNKey[m.NKey] = true
		if strings.ContainsAny(m.Operator, "\n") {
			return fmt.Errorf("%w: member %q: operator label has a newline", ErrConfig, m.Operator)
		}
	}
	return nil
}
