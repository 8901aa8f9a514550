package holdstore

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTokenLifecycle(t *testing.T) {
	s, clk := openTest(t)
	ctx := context.Background()

	walletTok, wallet, err := s.CreateToken(ctx, "wallet-a", RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	clk.SetTime(testStart.Add(time.Minute))
	adminTok, admin, err := s.CreateToken(ctx, "ops", RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, ok := strings.Cut(walletTok, ".")
	if !ok || id != wallet.ID || len(id) != 16 || len(secret) != 43 {
		t.Fatalf("token %q for id %s", walletTok, wallet.ID)
	}
	if raw, err := base64.RawURLEncoding.DecodeString(secret); err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %v", secret, err)
	}

	got, err := s.AuthenticateToken(ctx, walletTok)
	if err != nil || got.ID != wallet.ID || got.Name != "wallet-a" ||
		got.Role != RoleWallet || !got.CreatedAt.Equal(testStart) || got.Revoked() {
		t.Fatalf("authenticate wallet: %+v, %v", got, err)
	}
	if got, err := s.AuthenticateToken(ctx, adminTok); err != nil || got.Role != RoleAdmin {
		t.Fatalf("authenticate admin: %+v, %v", got, err)
	}

	clk.SetTime(testStart.Add(time.Hour))
	if err := s.RevokeToken(ctx, wallet.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AuthenticateToken(ctx, walletTok); !errors.Is(err, ErrTokenRevoked) {
		t.Fatalf("revoked token: %v", err)
	}
	// Revoking again changes nothing, not even the time.
	clk.SetTime(testStart.Add(2 * time.Hour))
	if err := s.RevokeToken(ctx, wallet.ID); err != nil {
		t.Fatalf("second revoke: %v", err)
	}
	if err := s.RevokeToken(ctx, "0123456789abcdef"); !errors.Is(err, ErrTokenNotFound) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if _, err := s.AuthenticateToken(ctx, adminTok); err != nil {
		t.Fatalf("admin token after another's revocation: %v", err)
	}

	toks, err := s.Tokens(ctx)
	if err != nil || len(toks) != 2 {
		t.Fatalf("tokens: %d, %v", len(toks), err)
	}
	if toks[0].ID != wallet.ID || !toks[0].RevokedAt.Equal(testStart.Add(time.Hour)) ||
		toks[1].ID != admin.ID || toks[1].Revoked() {
		t.Fatalf("listing: %+v %+v", toks[0], toks[1])
	}
}

func TestTokenRejected(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	tok, _, err := s.CreateToken(ctx, "wallet-a", RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	id, secret, _ := strings.Cut(tok, ".")
	flip := []byte(secret)
	flip[10] ^= 1
	for name, presented := range map[string]string{
		"empty":         "",
		"no dot":        id + secret,
		"short secret":  id + "." + secret[:42],
		"long secret":   id + "." + secret + "A",
		"short id":      id[:15] + "." + secret,
		"unknown id":    "0123456789abcdef." + secret,
		"wrong secret":  id + "." + string(flip),
		"swapped parts": secret + "." + id,
		"bearer prefix": "Bearer " + tok,
	} {
		if got, err := s.AuthenticateToken(ctx, presented); !errors.Is(err, ErrTokenInvalid) {
			t.Errorf("%s: got %+v, %v; want ErrTokenInvalid", name, got, err)
		}
	}
}

func TestTokenNameAndRole(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	for _, name := range []string{"", "-lead", "has space", "semi;colon",
		"ünïcode", strings.Repeat("a", 65)} {
		if _, _, err := s.CreateToken(ctx, name, RoleWallet); !errors.Is(err, ErrInvalid) {
			t.Errorf("name %q: %v", name, err)
		}
	}
	if _, _, err := s.CreateToken(ctx, "ok", "root"); !errors.Is(err, ErrInvalid) {
		t.Errorf("role root: %v", err)
	}
	for _, name := range []string{"a", "wallet.example-1_x", strings.Repeat("z", 64)} {
		if _, _, err := s.CreateToken(ctx, name, RoleWallet); err != nil {
			t.Errorf("name %q: %v", name, err)
		}
	}
	// Two tokens may act for one name: rotation.
	if _, _, err := s.CreateToken(ctx, "a", RoleWallet); err != nil {
		t.Errorf("second token for a: %v", err)
	}
}

// The database refuses to bring a revoked token back, to change a token's
// secret or role, or to delete one, whatever SQL asks.
func TestTokenRowsOnlyRevoke(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	_, tok, err := s.CreateToken(ctx, "wallet-a", RoleWallet)
	if err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) error {
		return s.Update(ctx, func(tx *Tx) error {
			_, err := tx.Exec(q, args...)
			return err
		})
	}
	for _, q := range []string{
		"UPDATE api_tokens SET role = 'admin' WHERE id = ?",
		"UPDATE api_tokens SET secret_hash = zeroblob(32) WHERE id = ?",
		"UPDATE api_tokens SET name = 'other' WHERE id = ?",
		"DELETE FROM api_tokens WHERE id = ?",
	} {
		if err := exec(q, tok.ID); err == nil {
			t.Errorf("%s: allowed", q)
		}
	}
	if err := s.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if err := exec("UPDATE api_tokens SET revoked_at = NULL WHERE id = ?", tok.ID); err == nil {
		t.Error("un-revoking allowed")
	}
	if err := exec("UPDATE api_tokens SET revoked_at = revoked_at + 1 WHERE id = ?", tok.ID); err == nil {
		t.Error("moving the revocation allowed")
	}
}

// Only the secret's hash is stored: neither the token nor its secret, in
// text or in bytes, is anywhere in the database's files, WAL included.
func TestTokenStoredOnlyHashed(t *testing.T) {
	s, _ := openTest(t)
	ctx := context.Background()
	var secrets, ids [][]byte
	for _, name := range []string{"wallet-a", "wallet-b", "ops"} {
		tok, stored, err := s.CreateToken(ctx, name, RoleWallet)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, []byte(stored.ID))
		_, secret, _ := strings.Cut(tok, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(secret)
		secrets = append(secrets, []byte(tok), []byte(secret), raw)
	}
	scan := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(filepath.Dir(s.Path()), "*"))
		var all []byte
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, b...)
		}
		// The scan sees the rows: their ids are there.
		for _, id := range ids {
			if !bytes.Contains(all, id) {
				t.Fatalf("%s: token id %s not found; the scan reads nothing", when, id)
			}
		}
		for _, secret := range secrets {
			if bytes.Contains(all, secret) {
				t.Fatalf("%s: a token secret is in the database files", when)
			}
		}
	}
	scan("open, in the WAL")
	s.Close()
	scan("closed, checkpointed")
}

// BenchmarkAuthenticateToken: every API request pays this once: a primary
// key lookup, a SHA-256 and a constant-time compare.
func BenchmarkAuthenticateToken(b *testing.B) {
	s, _ := openTest(b)
	ctx := context.Background()
	for i := range 1000 {
		if _, _, err := s.CreateToken(ctx, fmt.Sprintf("wallet-%d", i), RoleWallet); err != nil {
			b.Fatal(err)
		}
	}
	tok, _, err := s.CreateToken(ctx, "wallet-x", RoleWallet)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.AuthenticateToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}
