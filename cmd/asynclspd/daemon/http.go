package daemon

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/asynclsp/asynclsp/cmd/asyncctl/adminclient"
	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/console"
	"github.com/asynclsp/asynclsp/internal/httpjson"
	"github.com/asynclsp/asynclsp/senderlsp"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// server is one HTTP listener of the daemon.
type server struct {
	name     string
	srv      *http.Server
	ln       net.Listener
	shutdown func(context.Context)
}

func (s *server) serve(context.Context) error {
	err := s.srv.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// listen opens the API and ops listeners.
func (d *daemon) listen() ([]*server, error) {
	var servers []*server
	api, err := d.apiServer()
	if err != nil {
		return nil, err
	}
	servers = append(servers, api)
	if d.cfg.Ops.Listen != "" {
		ops, err := d.newServer("ops", d.cfg.Ops.Listen, d.opsHandler(), nil)
		if err != nil {
			return servers, err
		}
		servers = append(servers, ops)
	}
	return servers, nil
}

func (d *daemon) newServer(name, addr string, h http.Handler, tlsCfg *tls.Config) (*server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s listener: %w", name, err)
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	s := &server{name: name, srv: srv, ln: ln}
	s.shutdown = func(ctx context.Context) {
		if err := srv.Shutdown(ctx); err != nil {
			srv.Close()
		}
	}
	return s, nil
}

// apiServer serves both roles' APIs and the admin API on one listener.
func (d *daemon) apiServer() (*server, error) {
	var (
		senderAPI        *senderlsp.API
		sender, receiver http.Handler // nil interfaces for roles not run
		senderAdmin      senderRole
	)
	if d.sender != nil {
		senderAPI = d.sender.APIHandler(senderlsp.APIConfig{Logger: d.log})
		sender, senderAdmin = senderAPI, d.sender
	}
	if d.receiver != nil {
		receiver = d.receiver.Handler()
	}
	admin := newAdminAPI(d.store, senderAdmin, d.info(), clock.NewDefaultClock(), d.log)
	var mux http.Handler = apiMux(sender, receiver, admin)
	if !d.cfg.API.NoConsole {
		var err error
		d.console, mux, err = withConsole(mux, d.store, d.lnd, d.log)
		if err != nil {
			return nil, err
		}
	}
	var tlsCfg *tls.Config
	if d.cfg.API.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(d.cfg.API.TLSCert, d.cfg.API.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("api.tlscert/api.tlskey: %w", err)
		}
		tlsCfg = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	s, err := d.newServer("api", d.cfg.API.Listen, mux, tlsCfg)
	if err != nil {
		return nil, err
	}
	if senderAPI != nil {
		// Shutdown does not end streaming requests; the API ends its
		// event streams itself.
		s.srv.RegisterOnShutdown(senderAPI.Close)
	}
	return s, nil
}

// info is who the daemon is, for GET /v1/admin/info.
func (d *daemon) info() adminclient.Info {
	nats := "external"
	if d.nats != nil {
		nats = "embedded"
	}
	pub := d.lnd.PubKey()
	return adminclient.Info{Version: Version, NodeKey: pub.String(),
		Network: d.cfg.Network, Roles: d.cfg.Roles, NATS: nats}
}

// apiMux routes the daemon's API: the sender's wallet API under
// /v1/payments and /v1/events, the admin API under /v1/admin, the
// receiver's under the rest of /v1. A role the daemon does not run is
// nil; its paths are then not found.
func apiMux(sender, receiver, admin http.Handler) *http.ServeMux {
	mux := http.NewServeMux()
	if sender != nil {
		for _, p := range []string{"/v1/payments", "/v1/payments/", "/v1/events"} {
			mux.Handle(p, sender)
		}
	}
	if receiver != nil {
		mux.Handle("/v1/", receiver)
	}
	mux.Handle("/v1/admin/", admin)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		var body adminclient.ErrorBody
		body.Error.Code = adminclient.CodeNotFound
		body.Error.Message = "no such endpoint: " + r.URL.Path
		httpjson.Write(w, http.StatusNotFound, body)
	})
	return mux
}

// withConsole serves the operator's web console under /console/ beside the
// API it reads. The caller runs the console (its charts' sampling).
func withConsole(api http.Handler, store console.Store, height console.Heights,
	log *slog.Logger) (*console.Console, http.Handler, error) {

	c, err := console.New(console.Config{Store: store, API: api, Height: height,
		Logger: log})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(console.Prefix, c)
	mux.Handle("/", api)
	return c, mux, nil
}

// opsHandler serves /healthz (the process is up), /readyz (every part is
// connected and the roles have resumed their holds), /metrics and, with
// ops.pprof, Go's profiler under /debug/pprof/.
func (d *daemon) opsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := d.ready.checkNow(r.Context()); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(d.reg, promhttp.HandlerOpts{}))
	if d.cfg.Ops.PProf {
		handlePProf(mux)
	}
	return mux
}

// handlePProf serves net/http/pprof on mux, as that package does on
// http.DefaultServeMux, which the daemon does not serve. Index serves the
// named profiles: /debug/pprof/heap, goroutine, allocs, ...
func handlePProf(mux *http.ServeMux) {
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
}

// readiness holds the check /readyz runs; nil while starting or stopping.
type readiness struct {
	mu    sync.Mutex
	check func(context.Context) error
}

func (r *readiness) set(f func(context.Context) error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.check = f
}

func (r *readiness) checkNow(ctx context.Context) error {
	r.mu.Lock()
	f := r.check
	r.mu.Unlock()
	if f == nil {
		return errors.New("starting or stopping")
	}
	return f(ctx)
}

// readyCheck: lnd answers, NATS is connected, the sender role has resumed
// every hold.
func (d *daemon) readyCheck(ctx context.Context) error {
	if !d.conn.Connected() {
		return errors.New("NATS disconnected")
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if _, err := d.lnd.CurrentHeight(ctx); err != nil {
		return fmt.Errorf("lnd: %w", err)
	}
	if d.sender != nil {
		select {
		case <-d.sender.Running():
		default:
			return errors.New("sender role still resuming holds")
		}
	}
	return nil
}

// AdminTokenFile is where the daemon keeps the operator's admin token, like
// lnd's admin.macaroon: asyncctl reads it from the data dir.
const AdminTokenFile = "admin.token"

// ensureAdminToken makes sure the data dir holds a valid admin token,
// creating one at the first start (or after it was revoked or lost).
func (d *daemon) ensureAdminToken(ctx context.Context) error {
	path := filepath.Join(d.cfg.DataDir, AdminTokenFile)
	if b, err := os.ReadFile(path); err == nil {
		tok, err := d.store.AuthenticateToken(ctx, strings.TrimSpace(string(b)))
		if err == nil && tok.Role == holdstore.RoleAdmin {
			return nil
		}
		d.own.Warn("admin token file is not a valid admin token; making a new one", "file", path)
	}
	plain, _, err := d.store.CreateToken(ctx, "admin", holdstore.RoleAdmin)
	if err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(plain+"\n"), 0o600); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("admin token: %w", err)
	}
	d.own.Info("admin token written", "file", path)
	return nil
}
