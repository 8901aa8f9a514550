// Package console is the operator's web console of asynclspd: a few pages
// served under /console/ on the API listener, behind an admin token, that
// show what the daemon holds and update live.
//
// The console has no data of its own. Its pages read the daemon's existing
// APIs (the sender's /v1/payments and /v1/events, the admin API) through
// /console/api/v1/..., where the console puts the operator's admin token,
// kept in an HttpOnly cookie, into the Authorization header. Only the
// listed read endpoints and two actions (cancel a payment, revoke a token)
// are reachable that way: nothing that answers a secret. Actions need the
// session's CSRF token as well as the cookie.
//
// Floor: ground. Owns the console's pages, session and CSRF check; it
// imports only the ground floor (holdstore), never a role: the roles' APIs
// are handed to it as an http.Handler.
package console

import (
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/lightningnetwork/lnd/clock"
)

//go:embed assets
var assets embed.FS

// Store is what the console reads of the daemon's store
// (*holdstore.Store).
type Store interface {
	AuthenticateToken(ctx context.Context, token string) (*holdstore.Token, error)
	History(ctx context.Context, id holdstore.ID) ([]holdstore.Event, error)
	CountByState(ctx context.Context) (map[holdstore.State]int, error)
	PendingTotals(ctx context.Context) (holdstore.Pending, error)
}

// Heights tells the chain height, for the blocks left to each deadline
// (*lnd.Client).
type Heights interface {
	CurrentHeight(ctx context.Context) (uint32, error)
}

// Config is what a console needs.
type Config struct {
	Store Store
	// API serves the daemon's APIs (/v1/...): the console forwards its
	// pages' requests to it.
	API http.Handler
	// Height is nil when the daemon does not know the chain (no sender
	// role); the pages then show no blocks left.
	Height Heights
	// SampleEvery is how often Run samples the holds for the charts.
	// Default: a minute.
	SampleEvery time.Duration
	Clock       clock.Clock // default: the wall clock
	Logger      *slog.Logger
}

// Console serves the web console under Prefix.
type Console struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	static http.Handler
	login  *template.Template
	index  []byte
	series series
	// csrfKey signs the sessions' CSRF tokens. It is new at every start:
	// a page from before a restart is stale and its actions are refused.
	csrfKey [32]byte
}

// Prefix is where the console is served.
const Prefix = "/console/"

// New makes a console.
func New(cfg Config) (*Console, error) {
	if cfg.Store == nil || cfg.API == nil {
		return nil, errors.New("console: Store and API are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SampleEvery <= 0 {
		cfg.SampleEvery = time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = clock.NewDefaultClock()
	}
	c := &Console{cfg: cfg, log: cfg.Logger.With("component", "console"),
		mux: http.NewServeMux()}
	if err := c.newKey(); err != nil {
		return nil, err
	}
	static, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, err
	}
	c.static = http.StripPrefix("/console/static/", http.FileServerFS(static))
	if c.login, err = template.ParseFS(assets, "assets/login.html"); err != nil {
		return nil, err
	}
	if c.index, err = assets.ReadFile("assets/index.html"); err != nil {
		return nil, err
	}
	c.routes()
	return c, nil
}

func (c *Console) routes() {
	m := c.mux
	m.HandleFunc("GET /console/{$}", c.page)
	m.HandleFunc("GET /console/login", c.loginPage)
	m.HandleFunc("POST /console/login", c.loginSubmit)
	m.HandleFunc("POST /console/logout", c.logout)
	m.Handle("GET /console/static/", c.static)
	m.HandleFunc("GET /console/api/status", c.withSession(c.status))
	m.HandleFunc("GET /console/api/payments/{id}/history", c.withSession(c.history))
	m.HandleFunc("GET /console/api/series", c.withSession(c.getSeries))
	// What the pages may reach of the daemon's API: reads that show no
	// secret, and the two operator actions.
	for _, p := range []string{
		"GET /console/api/v1/payments",
		"GET /console/api/v1/payments/{id}",
		"POST /console/api/v1/payments/{id}/cancel",
		"GET /console/api/v1/events",
		"GET /console/api/v1/admin/info",
		"GET /console/api/v1/admin/stats",
		"GET /console/api/v1/admin/receivers",
		"GET /console/api/v1/admin/mailbox",
		"GET /console/api/v1/admin/tokens",
		"POST /console/api/v1/admin/tokens/{id}/revoke",
	} {
		m.HandleFunc(p, c.withSession(c.forward))
	}
	m.HandleFunc("/console/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not_found",
			"the console does not offer "+r.Method+" "+r.URL.Path)
	})
	m.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, Prefix, http.StatusSeeOther)
	})
}

// ServeHTTP serves the console.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// Not no-referrer: with it a browser sends "Origin: null" on the
	// login form, which the same-origin check refuses.
	h.Set("Referrer-Policy", "same-origin")
	// Everything comes from the daemon itself; no inline script.
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; "+
		"style-src 'self'; img-src 'self' data:; connect-src 'self'; "+
		"frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	c.mux.ServeHTTP(w, r)
}

// page serves the console's one page, or the login page without a session.
func (c *Console) page(w http.ResponseWriter, r *http.Request) {
	if _, _, err := c.session(r); err != nil {
		http.Redirect(w, r, "/console/login", http.StatusSeeOther)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Write(c.index)
}

// statusJSON is GET /console/api/status: who is logged in, the session's
// CSRF token, and the chain height.
type statusJSON struct {
	Operator string    `json:"operator"`
	TokenID  string    `json:"token_id"`
	CSRF     string    `json:"csrf"`
	Height   uint32    `json:"height"`
	Now      time.Time `json:"now"`
}

func (c *Console) status(w http.ResponseWriter, r *http.Request, s *session) {
	out := statusJSON{Operator: s.tok.Name, TokenID: s.tok.ID,
		CSRF: c.csrfToken(s.bearer), Now: time.Now().UTC()}
	if c.cfg.Height != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		defer cancel()
		h, err := c.cfg.Height.CurrentHeight(ctx)
		if err != nil {
			c.log.Warn("no chain height for the console", "err", err)
		}
		out.Height = h
	}
	httpjson.Write(w, http.StatusOK, out)
}

// historyJSON is one event of a hold's history.
type historyJSON struct {
	Seq    uint64           `json:"seq"`
	From   holdstore.State  `json:"from"`
	State  holdstore.State  `json:"state"`
	Reason holdstore.Reason `json:"reason"`
	Final  bool             `json:"final"`
	At     time.Time        `json:"at"`
}

// history: GET /console/api/payments/{id}/history, every transition of a
// hold, oldest first.
func (c *Console) history(w http.ResponseWriter, r *http.Request, _ *session) {
	id, err := holdstore.ParseID(r.PathValue("id"))
	if err != nil {
		writeError(w, http.StatusNotFound, "not_found", "no payment with that id")
		return
	}
	evs, err := c.cfg.Store.History(r.Context(), id)
	if err != nil {
		c.log.Error("reading a hold's history", "hold", id.String(), "err", err)
		writeError(w, http.StatusInternalServerError, "internal",
			"internal error; the daemon's log has the details")
		return
	}
	out := struct {
		Events []historyJSON `json:"events"`
	}{Events: make([]historyJSON, len(evs))}
	for i, ev := range evs {
		out.Events[i] = historyJSON{Seq: ev.Seq, From: ev.From, State: ev.To,
			Reason: ev.Reason, Final: ev.Final, At: ev.At.UTC()}
	}
	httpjson.Write(w, http.StatusOK, out)
}

// forward hands a page's request to the daemon's API as the operator: the
// path without /console/api, the session's token as the bearer, no cookie.
// Event streams pass through as they are, and end with the request.
func (c *Console) forward(w http.ResponseWriter, r *http.Request, s *session) {
	r2 := r.Clone(r.Context())
	r2.URL.Path = strings.TrimPrefix(r.URL.Path, "/console/api")
	r2.URL.RawPath = ""
	r2.RequestURI = r2.URL.RequestURI()
	r2.Header.Del("Cookie")
	r2.Header.Del(csrfHeader)
	r2.Header.Set("Authorization", "Bearer "+s.bearer)
	if r.Method != http.MethodGet {
		c.log.Info("operator action from the console", "method", r.Method,
			"path", r2.URL.Path, "by", s.tok.Name, "by_token", s.tok.ID)
	}
	c.cfg.API.ServeHTTP(w, r2)
}

// errorJSON is the console's error, shaped as the APIs' errors are.
type errorJSON struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	var e errorJSON
	e.Error.Code, e.Error.Message = code, msg
	httpjson.Write(w, status, e)
}
