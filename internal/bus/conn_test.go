package bus

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

func TestClientConfigValidate(t *testing.T) {
	key := testKey(1)
	for _, c := range []struct {
		name    string
		cfg     ClientConfig
		wantTLS bool
		wantErr bool
	}{
		{name: "loopback plain", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222"}, NodeKey: key}},
		{name: "localhost plain", cfg: ClientConfig{URLs: []string{"nats://localhost:4222"}, NodeKey: key}},
		{name: "ipv6 loopback plain", cfg: ClientConfig{URLs: []string{"nats://[::1]:4222"}, NodeKey: key}},
		{name: "remote forces TLS", cfg: ClientConfig{URLs: []string{"nats://nats.example.com:4222"}, NodeKey: key}, wantTLS: true},
		{name: "one remote among loopbacks forces TLS", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222", "nats://10.0.0.2:4222"}, NodeKey: key}, wantTLS: true},
		{name: "remote plain when allowed", cfg: ClientConfig{URLs: []string{"nats://10.0.0.2:4222"}, NodeKey: key, AllowPlainText: true}},
		{name: "tls scheme on loopback", cfg: ClientConfig{URLs: []string{"tls://127.0.0.1:4222"}, NodeKey: key}, wantTLS: true},
		{name: "CA file on loopback", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222"}, NodeKey: key, TLS: TLSConfig{CAFile: "ca.pem"}}, wantTLS: true},
		{name: "no URL", cfg: ClientConfig{NodeKey: key}, wantErr: true},
		{name: "no node key", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222"}}, wantErr: true},
		{name: "bad scheme", cfg: ClientConfig{URLs: []string{"http://127.0.0.1:4222"}, NodeKey: key}, wantErr: true},
		{name: "no host", cfg: ClientConfig{URLs: []string{"127.0.0.1:4222"}, NodeKey: key}, wantErr: true},
		{name: "seed and creds", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222"}, NodeKey: key, NKeySeedFile: "a", CredsFile: "b"}, wantErr: true},
		{name: "cert without key", cfg: ClientConfig{URLs: []string{"nats://127.0.0.1:4222"}, NodeKey: key, TLS: TLSConfig{CertFile: "c.pem"}}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			gotTLS, err := c.cfg.validate(true)
			if (err != nil) != c.wantErr {
				t.Fatalf("err = %v, want error %v", err, c.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("err = %v, want ErrConfig", err)
			}
			if err == nil && gotTLS != c.wantTLS {
				t.Errorf("requireTLS = %v, want %v", gotTLS, c.wantTLS)
			}
		})
	}
}

// unspecifiedURL points at the server's port on 0.0.0.0: Linux delivers
// that to the local host, and for the bus it is not a loopback address, so
// it stands for a remote server.
func unspecifiedURL(s *Server) string {
	return "nats://0.0.0.0:" + strconv.Itoa(s.Addr().Port)
}

func TestConnectRefusesPlainTextToRemote(t *testing.T) {
	srv := startTestServer(t)
	start := time.Now()
	_, err := Connect(testCtx(t), ClientConfig{URLs: []string{unspecifiedURL(srv)}, NodeKey: testKey(1), Logger: testLogger(t)})
	if !errors.Is(err, ErrPlainText) {
		t.Fatalf("got %v, want ErrPlainText", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("refused after %v; it should not retry", d)
	}

	allowed := connectTest(t, []string{unspecifiedURL(srv)}, testKey(1), func(c *ClientConfig) { c.AllowPlainText = true })
	if allowed.nc.TLSRequired() {
		t.Error("TLS on a plain server")
	}
}

func TestConnectTLS(t *testing.T) {
	caFile, serverTLS := testPKI(t)
	srv, err := startServer(testCtx(t), &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, NoSigs: true,
		TLS: true, TLSConfig: serverTLS, TLSTimeout: 2,
	}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	port := strconv.Itoa(srv.Addr().Port)

	for _, url := range []string{"tls://127.0.0.1:" + port, "nats://0.0.0.0:" + port} {
		c := connectTest(t, []string{url}, testKey(1), func(c *ClientConfig) { c.TLS.CAFile = caFile })
		if _, err := c.nc.TLSConnectionState(); err != nil {
			t.Errorf("%s: not TLS: %v", url, err)
		}
	}

	// The system roots do not know the test CA: a clear, immediate error.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err = Connect(ctx, ClientConfig{URLs: []string{"tls://127.0.0.1:" + port}, NodeKey: testKey(1), Logger: testLogger(t)})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "certificate not trusted") {
		t.Fatalf("got %v after %v, want an untrusted-certificate error at once", err, time.Since(start))
	}
}

func TestConnectRefusedCredentials(t *testing.T) {
	e := newPermEnv(t)
	_, unknownSeed := newUser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Connect(ctx, ClientConfig{URLs: []string{e.url}, NodeKey: testKey(9), NKeySeedFile: unknownSeed, Logger: testLogger(t)})
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "refused the credentials") {
		t.Fatalf("got %v, want a refused-credentials error at once", err)
	}
}

// TestConnectWaitsForServer: Connect keeps trying until the server is
// up, within its context.
func TestConnectWaitsForServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	url := "nats://127.0.0.1:" + strconv.Itoa(port)

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	_, err = Connect(ctx, ClientConfig{URLs: []string{url}, NodeKey: testKey(1), Logger: testLogger(t), ReconnectWait: 20 * time.Millisecond})
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no server: got %v, want the context's deadline", err)
	}

	connected := make(chan error, 1)
	go func() {
		c, err := Connect(testCtx(t), ClientConfig{URLs: []string{url}, NodeKey: testKey(1), Logger: testLogger(t), ReconnectWait: 20 * time.Millisecond})
		if err == nil {
			err = c.Close()
		}
		connected <- err
	}()
	s, err := StartEmbedded(testCtx(t), EmbeddedConfig{StoreDir: t.TempDir(), Port: port, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Shutdown)
	if err := <-connected; err != nil {
		t.Fatalf("Connect once the server is up: %v", err)
	}
}

// testPKI makes a CA and a server certificate for 127.0.0.1 and 0.0.0.0.
// It returns the CA's PEM file and the server's TLS configuration.
func testPKI(t *testing.T) (caFile string, serverTLS *tls.Config) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "asynclsp test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "nats"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("0.0.0.0")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return caFile, &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{srvDER}, PrivateKey: srvKey}},
	}
}

// TestCloseWithServerGone: closing a connection whose server is gone is a
// clean close, not an error: every durable publish waited for its ack, so
// nothing the reconnect buffer could hold is lost (an unsent ack only means
// a redelivery). The daemon's exit code after SIGTERM depends on it.
func TestCloseWithServerGone(t *testing.T) {
	s := startTestServer(t)
	c, err := Connect(testCtx(t), ClientConfig{URLs: []string{s.ClientURL()},
		NodeKey: testKey(1), Logger: testLogger(t), ReconnectWait: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.EnsureStream(testCtx(t), StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	stop := runConsumer(t, c, func(context.Context, Msg) error { return nil })
	s.Shutdown()
	waitFor(t, 10*time.Second, func() error {
		if c.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
	if err := stop(); err != nil {
		t.Fatalf("Consume with the server gone: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close with the server gone: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close again: %v", err)
	}
}
