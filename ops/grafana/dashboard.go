// Package grafana builds asynclsp's Grafana dashboard from the metrics that
// asynclspd serves on its ops listener (/metrics). The dashboard is
// generated with grafana-foundation-sdk and checked in as
// asynclsp-dashboard.json; `go test ./ops/grafana -update` writes it again
// after a change here, and a test fails while the file is not current.
//
// Floor: top. Owns the dashboard; it imports none of asynclsp's packages:
// it knows the metrics by name, and a daemon test checks every name it
// queries against a real /metrics.
package grafana

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// UID is the dashboard's uid in Grafana.
const UID = "asynclsp-overview"

// The series the dashboard queries, by the asynclspd that serves them
// (instance=~"$instance").
const sel = `{instance=~"$instance"}`

// Blocks left to the nearest deadline, per daemon.
const blocksLeft = `min by (instance) (asynclsp_sender_nearest_deadline_height` + sel +
	` - asynclsp_sender_block_height` + sel + `)`

var ds = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// query is one target of a panel.
type query struct{ expr, legend string }

func targets(qs []query) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(qs))
	for i, q := range qs {
		b := prometheus.NewDataqueryBuilder().Expr(q.expr).Datasource(ds)
		if q.legend != "" {
			b = b.LegendFormat(q.legend)
		}
		out[i] = b
	}
	return out
}

// panel is one panel of the dashboard, as data: Dashboard turns each into
// a builder, Queries lists their expressions for the test that checks them
// against a real /metrics.
type panel struct {
	title, desc, unit string
	stat              bool
	// thresholds from the lowest: red below the first value, and so on.
	steps   []dashboard.Threshold
	queries []query
	width   uint32
}

var sections = []struct {
	row    string
	panels []panel
}{
	{"Held payments", []panel{
		{title: "Held now", stat: true, width: 5,
			desc:    "Payments HELD, RELEASED or FORWARDING: the sender's HTLC is held.",
			queries: []query{{`sum(asynclsp_sender_holds{instance=~"$instance",state=~"HELD|RELEASED|FORWARDING"})`, ""}}},
		{title: "Amount not yet final", stat: true, width: 5, unit: "suffix: sat",
			desc:    "The amounts of the payments not yet settled or canceled.",
			queries: []query{{`sum(asynclsp_sender_pending_amount_msat` + sel + `) / 1000`, ""}}},
		{title: "Blocks to the nearest deadline", stat: true, width: 5,
			desc: "Blocks until the first held payment must be canceled: red within a day (144), amber within three.",
			steps: []dashboard.Threshold{{Color: "red"}, {Value: cog.ToPtr(144.0), Color: "orange"},
				{Value: cog.ToPtr(432.0), Color: "green"}},
			queries: []query{{blocksLeft, "{{instance}}"}}},
		{title: "Losses (must stay 0)", stat: true, width: 5,
			desc:    "Receivers paid whose hold invoice could not be settled.",
			steps:   []dashboard.Threshold{{Color: "green"}, {Value: cog.ToPtr(1.0), Color: "red"}},
			queries: []query{{`sum(asynclsp_sender_losses_total` + sel + `)`, ""}}},
		{title: "Lingering HTLCs (must stay 0)", stat: true, width: 4,
			desc: "Incoming HTLCs of payments that ended, which lnd confirmed and still has on a " +
				"channel: unless lnd removes them, the channel is force-closed at their expiry.",
			steps:   []dashboard.Threshold{{Color: "green"}, {Value: cog.ToPtr(1.0), Color: "red"}},
			queries: []query{{`sum(asynclsp_sender_lingering_htlcs` + sel + `)`, ""}}},
		{title: "Holds by state", width: 8,
			queries: []query{{`sum by (state) (asynclsp_sender_holds` + sel + `)`, "{{state}}"}}},
		{title: "Amount held", width: 8, unit: "suffix: sat",
			queries: []query{{`sum by (instance) (asynclsp_sender_pending_amount_msat` + sel + `) / 1000`, "{{instance}}"}}},
		{title: "Time to the nearest deadline (blocks)", width: 8,
			steps: []dashboard.Threshold{{Color: "red"}, {Value: cog.ToPtr(144.0), Color: "orange"},
				{Value: cog.ToPtr(432.0), Color: "green"}},
			queries: []query{{blocksLeft, "{{instance}}"}}},
	}},
	{"Releases and cancellations", []panel{
		{title: "Release to settled", width: 12, unit: "s",
			desc: "From a valid release to the hold invoice settled.",
			queries: []query{
				{`histogram_quantile(0.5, sum by (le) (rate(asynclsp_sender_release_to_settle_seconds_bucket` + sel + `[$__rate_interval])))`, "p50"},
				{`histogram_quantile(0.9, sum by (le) (rate(asynclsp_sender_release_to_settle_seconds_bucket` + sel + `[$__rate_interval])))`, "p90"},
				{`histogram_quantile(0.99, sum by (le) (rate(asynclsp_sender_release_to_settle_seconds_bucket` + sel + `[$__rate_interval])))`, "p99"},
			}},
		{title: "Cancellations by reason", width: 12,
			desc:    "The most specific reason of each canceled payment (README: Failure reasons).",
			queries: []query{{`sum by (reason) (increase(asynclsp_sender_cancels_total` + sel + `[$__rate_interval]))`, "{{reason}}"}}},
		{title: "Releases by verdict", width: 8, unit: "ops",
			queries: []query{{`sum by (verdict) (rate(asynclsp_sender_releases_total` + sel + `[$__rate_interval]))`, "{{verdict}}"}}},
		{title: "Payments to receivers", width: 8, unit: "ops",
			queries: []query{{`sum by (result) (rate(asynclsp_sender_outbound_results_total` + sel + `[$__rate_interval]))`, "{{result}}"}}},
		{title: "Held payments announced to receiver LSPs", width: 8, unit: "ops",
			queries: []query{{`sum by (result) (rate(asynclsp_sender_announcements_total` + sel + `[$__rate_interval]))`, "{{result}}"}}},
	}},
	{"NATS and lnd", []panel{
		{title: "NATS connected", stat: true, width: 6,
			steps:   []dashboard.Threshold{{Color: "red"}, {Value: cog.ToPtr(1.0), Color: "green"}},
			queries: []query{{`min(asynclsp_bus_connected` + sel + `)`, ""}}},
		{title: "NATS reconnects", width: 6,
			queries: []query{{`sum by (instance) (increase(asynclsp_bus_reconnects_total` + sel + `[$__rate_interval]))`, "{{instance}}"}}},
		{title: "NATS messages", width: 12, unit: "ops",
			queries: []query{{`sum by (kind, result) (rate(asynclsp_bus_messages_total` + sel + `[$__rate_interval]))`, "{{kind}} {{result}}"}}},
		{title: "Calls to lnd in flight", width: 8,
			desc: "Unary call attempts and stream opens; the peak since start shows how hard a restart's recovery hit lnd.",
			queries: []query{{`sum by (instance) (asynclsp_lnd_in_flight` + sel + `)`, "now {{instance}}"},
				{`max by (instance) (asynclsp_lnd_in_flight_max` + sel + `)`, "peak {{instance}}"}}},
		{title: "Holds lnd has not confirmed since the start", width: 8,
			desc:    "Held payments recovered at start that lnd has not yet confirmed it still holds: 0 once all are tracked again.",
			queries: []query{{`sum by (instance) (asynclsp_sender_holds_untracked` + sel + `)`, "{{instance}}"}}},
		{title: "Block height lnd reports", width: 8,
			desc:    "A height that stops rising while the chain goes on: lnd is not synced.",
			queries: []query{{`max by (instance) (asynclsp_sender_block_height` + sel + `)`, "{{instance}}"}}},
	}},
}

// Queries are the PromQL expressions of every panel.
func Queries() []string {
	var out []string
	for _, s := range sections {
		for _, p := range s.panels {
			for _, q := range p.queries {
				out = append(out, q.expr)
			}
		}
	}
	return out
}

// Dashboard builds the dashboard.
func Dashboard() (dashboard.Dashboard, error) {
	b := dashboard.NewDashboardBuilder("asynclsp").
		Uid(UID).
		Description("Held payments, their deadlines, releases and cancellations, and the "+
			"health of NATS and lnd, from asynclspd's /metrics.").
		Tags([]string{"asynclsp", "lightning"}).
		Refresh("30s").
		Time("now-6h", "now").
		Timezone(common.TimeZoneBrowser).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Prometheus").Type("prometheus")).
		WithVariable(dashboard.NewQueryVariableBuilder("instance").
			Label("asynclspd").
			Datasource(ds).
			Query(dashboard.StringOrMap{String: cog.ToPtr("label_values(asynclsp_bus_connected, instance)")}).
			Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
			Multi(true).IncludeAll(true))
	for _, s := range sections {
		b = b.WithRow(dashboard.NewRowBuilder(s.row))
		for _, p := range s.panels {
			b = b.WithPanel(p.builder())
		}
	}
	return b.Build()
}

func (p panel) builder() cog.Builder[dashboard.Panel] {
	var th *dashboard.ThresholdsConfigBuilder
	if p.steps != nil {
		th = dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(p.steps)
	}
	if p.stat {
		b := stat.NewPanelBuilder().Title(p.title).Datasource(ds).Height(5).Span(p.width).
			GraphMode(common.BigValueGraphModeArea)
		if p.desc != "" {
			b = b.Description(p.desc)
		}
		if p.unit != "" {
			b = b.Unit(p.unit)
		}
		if th != nil {
			b = b.Thresholds(th).ColorScheme(dashboard.NewFieldColorBuilder().
				Mode(dashboard.FieldColorModeIdThresholds))
		}
		for _, t := range targets(p.queries) {
			b = b.WithTarget(t)
		}
		return b
	}
	b := timeseries.NewPanelBuilder().Title(p.title).Datasource(ds).Height(8).Span(p.width).
		FillOpacity(10)
	if p.desc != "" {
		b = b.Description(p.desc)
	}
	if p.unit != "" {
		b = b.Unit(p.unit)
	}
	if th != nil {
		b = b.Thresholds(th)
	}
	for _, t := range targets(p.queries) {
		b = b.WithTarget(t)
	}
	return b
}

// JSON is the dashboard as Grafana imports it.
func JSON() ([]byte, error) {
	d, err := Dashboard()
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
