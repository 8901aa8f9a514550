package holdstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// This file is the API tokens table (migration 0003): the bearer tokens
// wallet backends and the operator use on the sender LSP's HTTP API. A token
// is "<id>.<secret>"; the id finds the row, and the secret's SHA-256 is
// compared in constant time with the stored one. The plaintext is returned
// once, by CreateToken, and never stored.

// Errors of the token table. Match them with errors.Is.
var (
	// ErrTokenInvalid: the token is malformed, unknown or has the wrong
	// secret. Callers should not tell these apart for the client.
	ErrTokenInvalid = errors.New("invalid API token")

	// ErrTokenRevoked: the token was right, but it has been revoked.
	ErrTokenRevoked = errors.New("API token revoked")

	// ErrTokenNotFound: no token with that id (RevokeToken).
	ErrTokenNotFound = errors.New("API token not found")
)

// TokenRole is what a token may do on the API.
type TokenRole string

// The roles.
const (
	// RoleWallet: a wallet backend. It creates payments, and reads and
	// cancels its own (those whose owner is the token's name).
	RoleWallet TokenRole = "wallet"

	// RoleAdmin: the LSP's operator. It reads and cancels every payment.
	RoleAdmin TokenRole = "admin"
)

// Valid reports whether r is a known role.
func (r TokenRole) Valid() bool { return r == RoleWallet || r == RoleAdmin }

// Token is an API token as stored: everything but its secret.
type Token struct {
	// ID is the public part of the token: 16 hex characters.
	ID string

	// Name is who the token acts for; the owner of the payments a wallet
	// token creates.
	Name string
	Role TokenRole

	CreatedAt time.Time

	// RevokedAt is zero while the token is valid.
	RevokedAt time.Time
}

// Revoked reports whether the token has been revoked.
func (t *Token) Revoked() bool { return !t.RevokedAt.IsZero() }

const (
	tokenIDBytes     = 8
	tokenSecretBytes = 32
	tokenNameMax     = 64
)

var (
	tokenIDLen     = hex.EncodedLen(tokenIDBytes)
	tokenSecretLen = base64.RawURLEncoding.EncodedLen(tokenSecretBytes)
)

const tokenColumns = "id, name, role, secret_hash, created_at, revoked_at"

// validTokenName: 1 to 64 characters of letters, digits, '.', '_' and '-',
// starting with a letter or digit. Names show up in logs and filters.
func validTokenName(name string) bool {
	if len(name) == 0 || len(name) > tokenNameMax {
		return false
	}
	for i, c := range name {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && (c == '.' || c == '_' || c == '-'):
		default:
			return false
		}
	}
	return true
}

// CreateToken makes a token for name with role and returns it: plaintext
// is the only copy of the secret there will ever be; show it to the
// operator once.
func (s *Store) CreateToken(ctx context.Context, name string, role TokenRole) (plaintext string, tok *Token, err error) {
	if !validTokenName(name) {
		return "", nil, fmt.Errorf("%w: token name %q: 1 to %d letters, "+
			"digits, '.', '_' or '-'", ErrInvalid, name, tokenNameMax)
	}
	if !role.Valid() {
		return "", nil, fmt.Errorf("%w: token role %q (want %q or %q)",
			ErrInvalid, role, RoleWallet, RoleAdmin)
	}
	var id [tokenIDBytes]byte
	var secret [tokenSecretBytes]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", nil, err
	}
	if _, err := rand.Read(secret[:]); err != nil {
		return "", nil, err
	}
	tok = &Token{ID: hex.EncodeToString(id[:]), Name: name, Role: role}
	secretText := base64.RawURLEncoding.EncodeToString(secret[:])
	hash := sha256.Sum256([]byte(secretText))
	err = s.Update(ctx, func(tx *Tx) error {
		tok.CreatedAt = tx.Now()
		_, err := tx.Exec("INSERT INTO api_tokens (id, name, role, "+
			"secret_hash, created_at) VALUES (?, ?, ?, ?, ?)",
			tok.ID, tok.Name, string(tok.Role), hash[:], nanos(tok.CreatedAt))
		return err
	})
	if err != nil {
		return "", nil, fmt.Errorf("create token for %s: %w", name, err)
	}
	return tok.ID + "." + secretText, tok, nil
}

// AuthenticateToken returns the token a caller presented, if it is valid.
// It fails with ErrTokenInvalid for a malformed or unknown token or a wrong
// secret (compared in constant time), and with ErrTokenRevoked for a right
// one that was revoked.
func (s *Store) AuthenticateToken(ctx context.Context, plaintext string) (*Token, error) {
	id, secret, ok := strings.Cut(plaintext, ".")
	if !ok || len(id) != tokenIDLen || len(secret) != tokenSecretLen {
		return nil, fmt.Errorf("%w: malformed", ErrTokenInvalid)
	}
	hash := sha256.Sum256([]byte(secret))
	tok, stored, err := s.token(ctx, id)
	if errors.Is(err, ErrTokenNotFound) {
		// Compare anyway, so an unknown id costs what a known one does.
		subtle.ConstantTimeCompare(hash[:], make([]byte, sha256.Size))
		return nil, fmt.Errorf("%w: unknown id %s", ErrTokenInvalid, safeID(id))
	}
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(hash[:], stored) != 1 {
		return nil, fmt.Errorf("%w: wrong secret for %s", ErrTokenInvalid, tok.ID)
	}
	if tok.Revoked() {
		return nil, fmt.Errorf("%w: %s (%s)", ErrTokenRevoked, tok.ID, tok.Name)
	}
	return tok, nil
}

// safeID is a token id fit for an error message: hex, or a placeholder.
func safeID(id string) string {
	if _, err := hex.DecodeString(id); err != nil {
		return "(not hex)"
	}
	return id
}

// Tokens lists every token, revoked ones included, oldest first.
func (s *Store) Tokens(ctx context.Context) ([]*Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+tokenColumns+
		" FROM api_tokens ORDER BY created_at, id")
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var toks []*Token
	for rows.Next() {
		tok, _, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		toks = append(toks, tok)
	}
	return toks, rows.Err()
}

// RevokeToken revokes the token with id: it stops working at once.
// Revoking a revoked token changes nothing; an unknown id fails with
// ErrTokenNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	return s.Update(ctx, func(tx *Tx) error {
		res, err := tx.Exec("UPDATE api_tokens SET revoked_at = ? "+
			"WHERE id = ? AND revoked_at IS NULL", nanos(tx.Now()), id)
		if err != nil {
			return fmt.Errorf("revoke token %s: %w", safeID(id), err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		var one int
		err = tx.QueryRow("SELECT 1 FROM api_tokens WHERE id = ?", id).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: %s", ErrTokenNotFound, safeID(id))
		}
		return err
	})
}

// token reads one token and its secret's hash.
func (s *Store) token(ctx context.Context, id string) (*Token, []byte, error) {
	row := s.db.QueryRowContext(ctx, "SELECT "+tokenColumns+
		" FROM api_tokens WHERE id = ?", id)
	tok, hash, err := scanToken(row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, ErrTokenNotFound
	}
	if err != nil {
		return nil, nil, fmt.Errorf("token %s: %w", safeID(id), err)
	}
	return tok, hash, nil
}

func scanToken(row scanner) (*Token, []byte, error) {
	var (
		tok     Token
		hash    []byte
		created int64
		revoked sql.NullInt64
	)
	if err := row.Scan(&tok.ID, &tok.Name, &tok.Role, &hash, &created,
		&revoked); err != nil {
		return nil, nil, err
	}
	tok.CreatedAt = time.Unix(0, created)
	if revoked.Valid {
		tok.RevokedAt = time.Unix(0, revoked.Int64)
	}
	return &tok, hash, nil
}
