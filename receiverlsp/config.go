package receiverlsp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/lightningnetwork/lnd/clock"
	"github.com/lightningnetwork/lnd/lnwire"
)

// Options are the receiver role's operator settings, as flags and ini
// entries (go-flags). DefaultOptions gives the defaults.
type Options struct {
	MinInvoiceLife time.Duration       `long:"mininvoicelife" description:"Refuse uploaded invoices that expire sooner than this"`
	MinAmount      lnwire.MilliSatoshi `long:"minamount" description:"Smallest amount (msat) an amountless invoice is handed out for"`
	MaxAmount      lnwire.MilliSatoshi `long:"maxamount" description:"Largest amount (msat) an amountless invoice is handed out for"`
	MaxUpload      int                 `long:"maxupload" description:"Most invoices in one upload"`
	MaxStock       int                 `long:"maxstock" description:"Most available invoices one receiver may keep here"`
	LowThreshold   int                 `long:"lowthreshold" description:"Fire the invoices_low webhook when a receiver has fewer available invoices than this"`

	MaxPendingPerReceiver int `long:"maxpending" description:"Most pending items in one receiver's mailbox"`
	MaxPendingPerSender   int `long:"maxpendingpersender" description:"Most pending items one sender LSP may have in one receiver's mailbox"`

	ChallengeTTL  time.Duration `long:"challengettl" description:"How long a registration challenge may be answered"`
	ReleaseSkew   time.Duration `long:"releaseskew" description:"Clock skew allowed on a release's validity window"`
	MaxWait       time.Duration `long:"maxwait" description:"Longest long-poll of a mailbox item (?wait=)"`
	SweepInterval time.Duration `long:"sweepinterval" description:"How often deadlines, owed webhooks and unrelayed releases are looked at"`
	RelayRetry    time.Duration `long:"relayretry" description:"Relay a recorded release again if it has not reached the bus after this long"`

	Webhook WebhookOptions `group:"Webhooks" namespace:"webhook"`
}

// WebhookOptions tune the wake-up webhooks.
type WebhookOptions struct {
	Cooldown         time.Duration `long:"cooldown" description:"Least time between two webhooks of one method to one receiver; later ones are coalesced"`
	Timeout          time.Duration `long:"timeout" description:"Timeout of one webhook request"`
	MaxAttempts      int           `long:"maxattempts" description:"Attempts per webhook before giving up"`
	FirstBackoff     time.Duration `long:"backoff" description:"Wait before the first retry; doubled for each further one"`
	MaxBackoff       time.Duration `long:"maxbackoff" description:"Longest wait between two attempts"`
	ExpirySoon       time.Duration `long:"expirysoon" description:"Send expiry_soon when a pending item's deadline is this close"`
	ExpirySoonBlocks uint32        `long:"expirysoonblocks" description:"Send expiry_soon when a pending item's deadline height is this many blocks away"`
	MaxInFlight      int           `long:"maxinflight" description:"Most webhooks being delivered at once"`
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		MinInvoiceLife:        24 * time.Hour,
		MinAmount:             1_000,
		MaxAmount:             4_294_967_295,
		MaxUpload:             256,
		MaxStock:              2000,
		LowThreshold:          10,
		MaxPendingPerReceiver: 100,
		MaxPendingPerSender:   20,
		ChallengeTTL:          5 * time.Minute,
		ReleaseSkew:           2 * time.Minute,
		MaxWait:               60 * time.Second,
		SweepInterval:         30 * time.Second,
		RelayRetry:            30 * time.Second,
		Webhook: WebhookOptions{
			Cooldown:         time.Minute,
			Timeout:          10 * time.Second,
			MaxAttempts:      5,
			FirstBackoff:     2 * time.Second,
			MaxBackoff:       time.Minute,
			ExpirySoon:       time.Hour,
			ExpirySoonBlocks: 12,
			MaxInFlight:      16,
		},
	}
}

// Validate checks the options make sense together.
func (o *Options) Validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	atLeastOne := func(name string, n int) {
		if n < 1 {
			errs = append(errs, fmt.Errorf("%s must be at least 1", name))
		}
	}
	positive("mininvoicelife", o.MinInvoiceLife)
	positive("challengettl", o.ChallengeTTL)
	positive("maxwait", o.MaxWait)
	positive("sweepinterval", o.SweepInterval)
	positive("relayretry", o.RelayRetry)
	positive("webhook.cooldown", o.Webhook.Cooldown)
	positive("webhook.timeout", o.Webhook.Timeout)
	positive("webhook.backoff", o.Webhook.FirstBackoff)
	positive("webhook.expirysoon", o.Webhook.ExpirySoon)
	atLeastOne("maxupload", o.MaxUpload)
	atLeastOne("maxstock", o.MaxStock)
	atLeastOne("maxpending", o.MaxPendingPerReceiver)
	atLeastOne("maxpendingpersender", o.MaxPendingPerSender)
	atLeastOne("webhook.maxattempts", o.Webhook.MaxAttempts)
	atLeastOne("webhook.maxinflight", o.Webhook.MaxInFlight)
	if o.ReleaseSkew < 0 {
		errs = append(errs, errors.New("releaseskew must not be negative"))
	}
	if o.LowThreshold < 0 {
		errs = append(errs, errors.New("lowthreshold must not be negative"))
	}
	if o.MinAmount == 0 || o.MaxAmount < o.MinAmount {
		errs = append(errs, fmt.Errorf("need 0 < minamount <= maxamount, "+
			"got %d and %d", o.MinAmount, o.MaxAmount))
	}
	if o.Webhook.MaxBackoff < o.Webhook.FirstBackoff {
		errs = append(errs, errors.New("webhook.maxbackoff must be at least webhook.backoff"))
	}
	if o.LowThreshold > o.MaxStock {
		errs = append(errs, errors.New("lowthreshold must not exceed maxstock"))
	}
	if o.MaxPendingPerSender > o.MaxPendingPerReceiver {
		errs = append(errs, errors.New("maxpendingpersender must not exceed maxpending"))
	}
	return errors.Join(errs...)
}

// Config assembles a Role.
type Config struct {
	// NodeKey is this LSP's node key: the first hop of the route hints
	// of the invoices it keeps, and the key its webhooks are signed by.
	NodeKey onionmsg.NodeKey

	// Network is the chain the invoices must be for.
	Network *chaincfg.Params

	// Store is the daemon's holdstore.
	Store *holdstore.Store

	// Messenger sends to sender LSPs (the daemon's *lspnet.Node).
	Messenger Messenger

	// Signer signs webhooks with NodeKey (lnd's signrpc in the daemon).
	Signer onionmsg.Signer

	// Height is the chain's block height source.
	Height HeightSource

	// Options; the zero value means DefaultOptions.
	Options Options

	// ChallengeKey authenticates registration challenges (HMAC-SHA256).
	// Default: 32 random bytes, so challenges do not survive a restart.
	ChallengeKey []byte

	// WebhookClient sends webhooks. Default: a client with
	// Options.Webhook.Timeout that follows no redirects.
	WebhookClient *http.Client

	Clock  clock.Clock
	Logger *slog.Logger
}
