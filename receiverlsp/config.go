package receiverlsp

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/asynclsp/asynclsp/holdstore"
	"github.com/asynclsp/asynclsp/internal/lsps0"
	"github.com/asynclsp/asynclsp/onionmsg"
	"github.com/asynclsp/asynclsp/receiverlsp/client"
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
	ReleaseTTL    time.Duration `long:"releasettl" description:"Validity of the release text a mailbox listing offers to sign with signmessage"`
	MaxWait       time.Duration `long:"maxwait" description:"Longest long-poll of a mailbox item (?wait=)"`
	SweepInterval time.Duration `long:"sweepinterval" description:"How often deadlines, owed webhooks and unrelayed releases are looked at"`
	RelayRetry    time.Duration `long:"relayretry" description:"Relay a recorded release again if it has not reached the bus after this long"`

	Webhook WebhookOptions `group:"Webhooks" namespace:"webhook"`
}

// WebhookOptions tune the LSPS5 webhooks (bLIP-55).
type WebhookOptions struct {
	Max                int           `long:"max" description:"Most webhooks (app_names) one receiver may set with lsps5.set_webhook"`
	Cooldown           time.Duration `long:"cooldown" description:"Least time between two notifications of one method to one receiver; later ones are coalesced. Reset when the receiver comes online"`
	Timestamp          string        `long:"timestamp" choice:"spec" choice:"ldk" description:"x-lsps5-timestamp form: spec (bLIP-55's 2006-01-02T15:04:05.000Z) or ldk (chrono's to_rfc3339, 2006-01-02T15:04:05.000+00:00, what LDK's validator accepts)"`
	Timeout            time.Duration `long:"timeout" description:"Timeout of one webhook request"`
	MaxAttempts        int           `long:"maxattempts" description:"Attempts per webhook before giving up"`
	FirstBackoff       time.Duration `long:"backoff" description:"Wait before the first retry; doubled for each further one"`
	MaxBackoff         time.Duration `long:"maxbackoff" description:"Longest wait between two attempts"`
	HoldExpiring       time.Duration `long:"holdexpiring" description:"Send asynclsp.hold_expiring when a pending item's deadline is this close"`
	HoldExpiringBlocks uint32        `long:"holdexpiringblocks" description:"Send asynclsp.hold_expiring when a pending item's deadline height is this many blocks away"`
	MaxInFlight        int           `long:"maxinflight" description:"Most webhooks being delivered at once"`
}

// MaxWebhooksLimit bounds Options.Webhook.Max: lsps5.list_webhooks answers
// every app_name in one LSPS0 message.
const MaxWebhooksLimit = 100

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
		ReleaseTTL:            10 * time.Minute,
		MaxWait:               60 * time.Second,
		SweepInterval:         30 * time.Second,
		RelayRetry:            30 * time.Second,
		Webhook: WebhookOptions{
			// LDK's defaults: 10 webhooks, a 60 s cooldown.
			Max:                10,
			Cooldown:           time.Minute,
			Timestamp:          client.TimestampSpec,
			Timeout:            10 * time.Second,
			MaxAttempts:        5,
			FirstBackoff:       2 * time.Second,
			MaxBackoff:         time.Minute,
			HoldExpiring:       time.Hour,
			HoldExpiringBlocks: 12,
			MaxInFlight:        16,
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
	positive("releasettl", o.ReleaseTTL)
	positive("webhook.cooldown", o.Webhook.Cooldown)
	positive("webhook.timeout", o.Webhook.Timeout)
	positive("webhook.backoff", o.Webhook.FirstBackoff)
	positive("webhook.holdexpiring", o.Webhook.HoldExpiring)
	atLeastOne("maxupload", o.MaxUpload)
	atLeastOne("maxstock", o.MaxStock)
	atLeastOne("maxpending", o.MaxPendingPerReceiver)
	atLeastOne("maxpendingpersender", o.MaxPendingPerSender)
	atLeastOne("webhook.maxattempts", o.Webhook.MaxAttempts)
	atLeastOne("webhook.maxinflight", o.Webhook.MaxInFlight)
	if o.Webhook.Max < 1 || o.Webhook.Max > MaxWebhooksLimit {
		errs = append(errs, fmt.Errorf("webhook.max must be 1 to %d", MaxWebhooksLimit))
	}
	if _, err := client.FormatTimestamp(time.Time{}, o.Webhook.Timestamp); err != nil {
		errs = append(errs, fmt.Errorf("webhook.timestamp: %w", err))
	}
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

	// MessageSigner signs the LSPS5 webhooks with NodeKey: bLIP-50's
	// ln_signature (lnd's lnrpc SignMessage in the daemon). Required,
	// unless Signer implements it too (as *lnd.Client and
	// *onionmsg.PrivKeySigner do), which is then used.
	MessageSigner onionmsg.MessageSigner

	// Signer is NodeKey's BIP-340 signer. The role no longer signs with
	// it; it stands in for MessageSigner when that is nil.
	Signer onionmsg.Signer

	// LSPS is the LSPS0 server the role's methods (lsps5.* and
	// asynclsp.*) are registered on. Default: a server of its own
	// (Role.LSPS), for the daemon to feed from lnd's custom messages.
	LSPS *lsps0.Server

	// Height is the chain's block height source.
	Height HeightSource

	// Options; the zero value means DefaultOptions.
	Options Options

	// ChallengeKey authenticates registration challenges (HMAC-SHA256).
	// Default: 32 random bytes, so challenges do not survive a restart.
	ChallengeKey []byte

	// WebhookClient sends webhooks. Default: a client with
	// Options.Webhook.Timeout. It never follows a redirect (55:444): New
	// sets its CheckRedirect so.
	WebhookClient *http.Client

	Clock  clock.Clock
	Logger *slog.Logger
}
