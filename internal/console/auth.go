package console

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/asynclsp/asynclsp/holdstore"
)

const (
	// cookieName keeps the operator's admin token: HttpOnly, so no script
	// reads it; SameSite=Strict, so no other site's page sends it.
	cookieName = "asynclsp_console"
	// csrfHeader carries the session's CSRF token on every action.
	csrfHeader = "X-CSRF-Token"
)

// The ways a request is refused; each message says what to do.
var (
	errNoSession = errors.New("not logged in: log in at /console/login with an admin token")
	errBadToken  = errors.New("that token is not valid, or it was revoked")
	errNotAdmin  = errors.New("the console needs an admin token")
	errForged    = errors.New("refused: this request did not come from a console page " +
		"(CSRF check failed); nothing was changed")
	errStale = errors.New("refused: this page is stale (the daemon restarted, or you " +
		"logged in again elsewhere); reload the page. Nothing was changed")
)

// session is a logged-in operator.
type session struct {
	bearer string
	tok    *holdstore.Token
}

func (c *Console) newKey() error {
	_, err := rand.Read(c.csrfKey[:])
	return err
}

// authenticate checks that bearer is a live admin token.
func (c *Console) authenticate(r *http.Request, bearer string) (*holdstore.Token, error) {
	tok, err := c.cfg.Store.AuthenticateToken(r.Context(), bearer)
	switch {
	case errors.Is(err, holdstore.ErrTokenInvalid), errors.Is(err, holdstore.ErrTokenRevoked):
		return nil, errBadToken
	case err != nil:
		return nil, err
	case tok.Role != holdstore.RoleAdmin:
		return nil, fmt.Errorf("%w; %q is a %s token", errNotAdmin, tok.Name, tok.Role)
	}
	return tok, nil
}

// session reads and checks the request's cookie.
func (c *Console) session(r *http.Request) (*session, *http.Cookie, error) {
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		return nil, nil, errNoSession
	}
	tok, err := c.authenticate(r, ck.Value)
	if err != nil {
		return nil, ck, err
	}
	return &session{bearer: ck.Value, tok: tok}, ck, nil
}

// withSession admits a request of a logged-in operator; one that changes
// anything must also pass the CSRF check.
func (c *Console) withSession(h func(http.ResponseWriter, *http.Request, *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _, err := c.session(r)
		if err != nil {
			if !errors.Is(err, errNoSession) && !errors.Is(err, errBadToken) &&
				!errors.Is(err, errNotAdmin) {
				c.log.Error("console session check failed", "err", err)
				writeError(w, http.StatusInternalServerError, "internal",
					"internal error; the daemon's log has the details")
				return
			}
			writeError(w, http.StatusUnauthorized, "unauthorized",
				err.Error()+": log in again")
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			if err := c.checkCSRF(r, s.bearer); err != nil {
				c.log.Warn("console action refused", "method", r.Method, "path", r.URL.Path,
					"by", s.tok.Name, "remote", r.RemoteAddr, "err", err)
				writeError(w, http.StatusForbidden, "forbidden", err.Error())
				return
			}
		}
		h(w, r, s)
	}
}

// csrfToken is the session's CSRF token: a MAC of its bearer under the
// key of this start of the daemon.
func (c *Console) csrfToken(bearer string) string {
	m := hmac.New(sha256.New, c.csrfKey[:])
	m.Write([]byte("asynclsp console csrf\x00" + bearer))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// checkCSRF admits an action sent by a console page of this session: same
// origin, with the session's CSRF token.
func (c *Console) checkCSRF(r *http.Request, bearer string) error {
	if err := sameOrigin(r); err != nil {
		return err
	}
	got := r.Header.Get(csrfHeader)
	if got == "" {
		return errForged
	}
	if !hmac.Equal([]byte(got), []byte(c.csrfToken(bearer))) {
		return errStale
	}
	return nil
}

// sameOrigin refuses a request a browser says came from another site.
func sameOrigin(r *http.Request) error {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return errForged
	}
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host != r.Host {
			return errForged
		}
	}
	return nil
}

// loginPage serves the login form, with what went wrong the last time.
func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.renderLogin(w, http.StatusOK, "")
}

func (c *Console) renderLogin(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := c.login.Execute(w, struct{ Error string }{msg}); err != nil {
		c.log.Debug("writing the login page", "err", err)
	}
}

// loginSubmit checks the token and keeps it in the session cookie.
func (c *Console) loginSubmit(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		c.renderLogin(w, http.StatusForbidden, err.Error())
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 4<<10)
	if err := r.ParseForm(); err != nil {
		c.renderLogin(w, http.StatusBadRequest, "the form could not be read")
		return
	}
	bearer := strings.TrimSpace(r.PostForm.Get("token"))
	if bearer == "" {
		c.renderLogin(w, http.StatusBadRequest, "paste the admin token "+
			"(the file admin.token in asynclspd's data dir)")
		return
	}
	tok, err := c.authenticate(r, bearer)
	if err != nil {
		c.log.Info("console login refused", "remote", r.RemoteAddr, "err", err)
		msg := "internal error; the daemon's log has the details"
		status := http.StatusInternalServerError
		if errors.Is(err, errBadToken) || errors.Is(err, errNotAdmin) {
			msg, status = "login refused: "+err.Error(), http.StatusUnauthorized
		}
		c.renderLogin(w, status, msg)
		return
	}
	c.log.Info("operator logged in to the console", "by", tok.Name, "by_token", tok.ID,
		"remote", r.RemoteAddr)
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: bearer, Path: "/console/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

// logout forgets the session cookie. It is an action: a forged logout is
// refused like any other.
func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	if err := sameOrigin(r); err != nil {
		writeError(w, http.StatusForbidden, "forbidden", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/console/",
		MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}
