// Package ota is the over-the-air update hook: signed model files on MQTT,
// checked, shadow-run, installed through the serving Owner, and watched by
// a guarded rollout.
package ota

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/linnet-edge/linnet/daemon/hooks"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
	"github.com/linnet-edge/linnet/store"
)

// Over-the-air model updates.
//
// Each served model has its own OTA hook, store part and decisions: a
// decision about one model never touches another. A model arrives as a
// .lnm file on the fleet topic or on this gateway's own topic, each with
// the model's name (linnet/ota/hvac, linnet/{gateway}/ota/hvac; the model
// named "default" also keeps linnet/ota/model and
// linnet/{gateway}/ota/model: see Topics), normally retained, so it comes
// again at every connection. The paho route handler only keeps the newest message per topic in a mailbox
// (oversize payloads are dropped right there, keeping only their size) and
// wakes the OTA goroutine; everything else happens there, off paho's
// goroutine and off the workers:
//
//  1. size under ota.max_bytes (checked before anything else);
//  2. the file decodes (structure, CRC-32C);
//  3. its Ed25519 signature verifies with a --trust key; an unsigned file
//     passes only with ota.allow_unsigned; a signature that does not verify
//     (unknown key, or altered bytes) never passes, since the store would
//     refuse the file anyway;
//  4. its version is newer than the active one; an older one only inside
//     a signed rollback file (model.NewRollback) whose signature verifies,
//     that this gateway never applied (else replay), that names the active
//     version as its source, this gateway or none, and has not expired
//     (else rollback_stale); a model file with the old rollback flag is
//     refused (legacy_rollback); a version a rollback withdrew (automatic,
//     or the version a signed rollback replaced) is refused: a retained
//     message would otherwise bring it back at every connection;
//  5. its features are the serving model's, same names in the same order,
//     and it is a classifier exactly when the serving model is (positional,
//     CSV and raw readings depend on the order), unless
//     ota.allow_schema_change;
//  6. shadow run (shadowRun): it predicts the last ota.shadow_readings
//     readings, every prediction finite and, for a regression, inside the
//     serving model's range on the same readings widened by
//     ota.shadow_tolerance times that range (or times a tenth of its
//     magnitude when the range is narrower);
//  7. store and activate in one store transaction (store.Install, or
//     store.InstallRollback, which checks a rollback file again and marks
//     it used in that transaction), then the
//     atomic swap of the serving model and a fresh learner.
//
// Idempotence: a retained delivery (the broker sends the retained model at
// every subscription, so at every connection) of a payload already decided
// by this process, with the same active version, is ignored without a
// result. After a restart the first retained arrival of the active model's
// own file gives one "already_active" result per topic, not recorded in the
// history (nothing changed). A live publish is always answered, so a push
// of the same file again gets "already_active".
//
// Every other decision is published on ota.result_topic as
// {"version":..,"accepted":bool,"reason":..,"detail":..,"model":..,...},
// counted in linnet_ota_results_total{model,reason} and recorded in the store's history
// (reject events, or the activation / rollback itself). Refusals are
// recorded 20 at once, then one per 6 s: past that a flood of bad files is
// still published and counted (linnet_ota_unrecorded_total) but does not
// become a flood of store commits.
//
// Guarded rollout (rollout.go): after a switch from an earlier version with
// the same schema, the labelled readings of the next ota.guard_window
// readings served by the new model are also scored by the previous one;
// if the new model's mean loss exceeds the previous one's by more than
// ota.guard_margin (relative), the store rolls back (store.Withdraw) and the
// previous model serves again.

// Config is the over-the-air update section ([ota]), the same for every
// model. Topics accept {gateway}; the fleet and gateway topics also
// {model} (see Topics).
type Config struct {
	Enabled      bool   `toml:"enabled"`
	FleetTopic   string `toml:"fleet_topic"`
	GatewayTopic string `toml:"gateway_topic"`
	ResultTopic  string `toml:"result_topic"`
	// MaxBytes refuses larger model files before anything else. The broker
	// should refuse them first: set mosquitto's max_packet_size (the
	// embedded broker's limit follows this and payload.max_bytes), since an
	// MQTT 3.1.1 client cannot announce a limit and paho reads a packet
	// whole before any handler sees it.
	MaxBytes          int  `toml:"max_bytes"`
	AllowUnsigned     bool `toml:"allow_unsigned"`
	AllowSchemaChange bool `toml:"allow_schema_change"`
	// ShadowReadings is how many recent readings the candidate must predict
	// sanely before it is activated (memory is capped at 256 Ki values).
	ShadowReadings  int     `toml:"shadow_readings"`
	ShadowTolerance float64 `toml:"shadow_tolerance"`
	// GuardWindow is how many labelled readings after a switch decide
	// whether the new model stays (0 disables the guard); GuardMargin is the
	// relative loss increase over the previous model that rolls it back.
	GuardWindow int     `toml:"guard_window"`
	GuardMargin float64 `toml:"guard_margin"`
	// GuardMinDelta is the smallest absolute difference of mean losses
	// that can roll back (0: 1% of the labels' variance); GuardMinDevices
	// how many distinct labelling devices (10 labels each) a rollback
	// needs; GuardDevices, if set, path.Match patterns of the devices
	// whose labels the guard counts. A window where the old model is
	// implausibly perfect, or too few devices, is inconclusive: the new
	// model stays (see model.Guard).
	GuardMinDelta   float64  `toml:"guard_min_delta"`
	GuardMinDevices int      `toml:"guard_min_devices"`
	GuardDevices    []string `toml:"guard_devices"`
}

// guardConfig is the section's model.GuardConfig.
func (o *Config) guardConfig() model.GuardConfig {
	return model.GuardConfig{Window: o.GuardWindow, Margin: o.GuardMargin, MinDelta: o.GuardMinDelta,
		MinDevices: o.GuardMinDevices, Devices: o.GuardDevices}
}

// Default is the section when nothing is set.
func Default() Config {
	return Config{
		Enabled:         true,
		FleetTopic:      wire.DefaultFleetTopic,
		GatewayTopic:    wire.DefaultGatewayTopic,
		ResultTopic:     wire.DefaultResultTopic,
		MaxBytes:        4 << 20,
		ShadowReadings:  256,
		ShadowTolerance: 10,
		GuardWindow:     500,
		GuardMargin:     0.2,
		GuardMinDevices: 3,
	}
}

// Validate reports the section's problems through bad.
func (o *Config) Validate(bad func(string, ...any)) {
	if !o.Enabled {
		return
	}
	for _, t := range []struct{ name, v string }{
		{"ota.fleet_topic", o.FleetTopic}, {"ota.gateway_topic", o.GatewayTopic}, {"ota.result_topic", o.ResultTopic},
	} {
		if t.v == "" || strings.ContainsAny(t.v, "+#") {
			bad("%s %q: want a topic name without wildcards", t.name, t.v)
		}
	}
	if o.FleetTopic == o.GatewayTopic {
		bad("ota.fleet_topic and ota.gateway_topic are both %q", o.FleetTopic)
	}
	if o.MaxBytes < 64 || o.MaxBytes > model.MaxFileSize {
		bad("ota.max_bytes %d: want 64 to %d", o.MaxBytes, model.MaxFileSize)
	}
	if o.ShadowReadings < 0 {
		bad("ota.shadow_readings %d: want 0 or more", o.ShadowReadings)
	}
	if !(o.ShadowTolerance > 0) || o.ShadowTolerance > 1e6 {
		bad("ota.shadow_tolerance %v: want a positive number up to 1e6", o.ShadowTolerance)
	}
	if o.GuardWindow < 0 || o.GuardWindow > 1e7 {
		bad("ota.guard_window %d: want 0 (off) to 10000000", o.GuardWindow)
	}
	if !(o.GuardMargin >= 0) || o.GuardMargin > 1e6 {
		bad("ota.guard_margin %v: want 0 to 1e6", o.GuardMargin)
	}
	if !(o.GuardMinDelta >= 0) || math.IsInf(o.GuardMinDelta, 0) {
		bad("ota.guard_min_delta %v: want a finite number, 0 or more", o.GuardMinDelta)
	}
	if o.GuardMinDevices < 1 || o.GuardMinDevices > 1e6 {
		bad("ota.guard_min_devices %d: want 1 to 1000000", o.GuardMinDevices)
	}
	for _, p := range o.GuardDevices {
		if _, err := path.Match(p, ""); err != nil || p == "" {
			bad("ota.guard_devices %q: not a device pattern (path.Match)", p)
		}
	}
}

// otaMsg is one message waiting in the mailbox.
type otaMsg struct {
	topic    string
	payload  []byte // nil when oversize
	size     int
	retained bool // delivered from the broker's retained store (at subscribe)
}

// OTA is the hook.
type OTA struct {
	hooks.Base
	host hooks.Host
	cfg  Config
	log  *slog.Logger

	keys       []ed25519.PublicKey
	st         *store.Model // the model's part of the store
	results    *prometheus.CounterVec
	unrecorded prometheus.Counter
	recBudget  budget // OTA goroutine only

	mu      sync.Mutex
	pending map[string]otaMsg
	wake    chan struct{}

	seen map[[32]byte]int64 // payload hash -> active version when decided; OTA goroutine only

	rec     recent
	guard   guardSlot
	verdict chan *guard

	// ShadowStarted, when set (tests), is called as the shadow run starts:
	// a test blocks there to show that predictions go on meanwhile.
	ShadowStarted func()
}

// New returns the hook for c (the daemon adds it only when c.Enabled).
func New(c Config) *OTA {
	o := &OTA{cfg: c, pending: map[string]otaMsg{}, wake: make(chan struct{}, 1),
		seen: map[[32]byte]int64{}, verdict: make(chan *guard, 1)}
	o.rec.limit = c.ShadowReadings
	o.recBudget = budget{capacity: 20, every: 6 * time.Second}
	return o
}

func (o *OTA) ID() string { return "ota" }

func (o *OTA) Provides(e byte) bool { return e == hooks.OnPredicted }

// Filters are the OTA subscriptions: never under $share, since every
// instance of a share group must get every model.
func (o *OTA) Filters() map[string]byte {
	f := map[string]byte{}
	for _, t := range o.topics() {
		f[t.Topic] = 1
	}
	return f
}

// Topic is one of a model's OTA topics.
type Topic struct {
	Topic   string
	Gateway bool // this gateway's own, not the fleet's
}

// Topics are model's OTA topics under c: the fleet's and the gateway's,
// each with the model's name (wire.ModelTopic); fill fills the rest of a template ({gateway}, {model}). The
// model named "default" also keeps the topics as configured, as before
// models had names.
func Topics(c Config, model string, fill func(tmpl string) string) []Topic {
	var ts []Topic
	for _, t := range []Topic{{c.FleetTopic, false}, {c.GatewayTopic, true}} {
		if model == store.DefaultModel && !strings.Contains(t.Topic, "{model}") {
			ts = append(ts, Topic{fill(t.Topic), t.Gateway})
		}
		ts = append(ts, Topic{fill(wire.ModelTopic(t.Topic, model)), t.Gateway})
	}
	return ts
}

func (o *OTA) topics() []Topic {
	return Topics(o.cfg, o.host.Model(), func(tmpl string) string { return o.host.Topic(tmpl, "") })
}

// Init registers the metrics and the routes (before Connect: a persistent
// session may deliver before Subscribe returns), and resumes a guarded
// rollout a restart interrupted.
func (o *OTA) Init(h hooks.Host) error {
	o.host, o.log, o.st, o.keys = h, h.Log().With("component", "ota"), h.Store(), h.Trust()
	results, err := hooks.Register(h.Registry(), prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_ota_results_total",
		Help: "Over-the-air model decisions, by model and reason (applied, rejections, automatic rollbacks)."}, []string{"model", "reason"}))
	if err != nil {
		return err
	}
	o.results = results.MustCurryWith(prometheus.Labels{"model": h.Model()})
	if o.unrecorded, err = hooks.Register(h.Registry(), prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_ota_unrecorded_total",
		Help: "OTA refusals published and counted but not written to the store's history (rate limit: each record is a commit, two fsyncs)."})); err != nil {
		return err
	}
	for _, r := range wire.OTAReasons {
		o.results.WithLabelValues(r)
	}
	if len(o.keys) == 0 && !o.cfg.AllowUnsigned {
		o.log.Warn("no trusted keys (--trust) and ota.allow_unsigned is off: every OTA model will be refused")
	}
	for f := range o.Filters() {
		h.Route(f, o.handle)
	}
	o.resumeGuard()
	if names, rows, err := o.st.Recent(); err == nil {
		o.rec.load(names, rows)
	}
	return nil
}

// recentEvery is how often the recent readings are kept in the store (a
// commit, two fsyncs, only when readings came).
const recentEvery = time.Minute

// Guarding reports whether a guarded rollout is watching the serving
// model.
func (o *OTA) Guarding() bool { return o.guard.p.Load() != nil }

// handle is paho's route handler: it never blocks and keeps at most one
// message per topic (the newest: a retained model replaces the previous).
func (o *OTA) handle(topic string, p []byte, retained bool) {
	if len(p) == 0 {
		return // a cleared retained message
	}
	m := otaMsg{topic: topic, size: len(p), retained: retained}
	if len(p) <= o.cfg.MaxBytes {
		m.payload = p
	}
	o.mu.Lock()
	o.pending[m.topic] = m
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// Run decides the models that arrive, one at a time, until ctx ends.
func (o *OTA) Run(ctx context.Context) error {
	o.run(ctx)
	return nil
}

func (o *OTA) run(ctx context.Context) {
	gw := map[string]bool{}
	for _, t := range o.topics() {
		gw[t.Topic] = t.Gateway
	}
	keep := time.NewTicker(recentEvery)
	defer keep.Stop()
	for {
		select {
		case <-ctx.Done():
			o.saveRecent()
			return
		case <-keep.C:
			o.saveRecent()
		case g := <-o.verdict:
			o.finishGuard(ctx, g)
		case <-o.wake:
			o.mu.Lock()
			msgs := make([]otaMsg, 0, len(o.pending))
			for _, m := range o.pending {
				msgs = append(msgs, m)
			}
			clear(o.pending)
			o.mu.Unlock()
			// The gateway's own topic first: it overrides the fleet's.
			slices.SortFunc(msgs, func(a, b otaMsg) int {
				switch {
				case gw[a.topic] && !gw[b.topic]:
					return -1
				case gw[b.topic] && !gw[a.topic]:
					return 1
				}
				return strings.Compare(a.topic, b.topic)
			})
			for _, m := range msgs {
				if ctx.Err() != nil {
					return
				}
				o.process(ctx, m)
			}
		}
	}
}

// candidate is a model that passed every check but the shadow run.
type candidate struct {
	m        *model.Model
	file     []byte
	rollback bool            // a signed rollback file (rb) brought m
	rb       *model.Rollback // verified; file is the rollback file
}

func (o *OTA) process(ctx context.Context, msg otaMsg) {
	res := wire.OTAResult{Topic: msg.topic}
	if msg.payload == nil {
		o.finish(ctx, res, wire.OTAOversize, fmt.Sprintf("%d bytes, ota.max_bytes is %d", msg.size, o.cfg.MaxBytes), nil)
		return
	}
	sum := sha256.Sum256(msg.payload)
	active, err := o.st.ActiveVersion()
	if err != nil {
		o.log.Error("read the active version", "err", err)
		return
	}
	if a, ok := o.seen[sum]; ok && a == active && msg.retained {
		return // a retained copy of a payload decided already, and nothing changed since
	}
	c, reason, detail := o.check(msg.payload, active)
	if c != nil {
		v := c.m.Version
		res.Version = &v
		res.Rollback = c.rollback
	}
	if reason == "" {
		reason, detail = o.apply(c, active)
	}
	o.finish(ctx, res, reason, detail, &sum)
}

// check runs steps 2 to 6. It returns the decoded candidate when the file
// decoded, and a reason when it is refused (or already active).
func (o *OTA) check(file []byte, active int64) (*candidate, string, string) {
	if model.IsRollbackFile(file) {
		c, reason, detail := o.checkRollback(file, active)
		if reason == "" {
			reason, detail = o.vet(c.m)
		}
		return c, reason, detail
	}
	m, err := model.Decode(file)
	if err != nil {
		if errors.Is(err, model.ErrChecksum) {
			return nil, wire.OTACorrupt, err.Error()
		}
		return nil, wire.OTAMalformed, err.Error()
	}
	c := &candidate{m: m, file: file}
	if model.IsRollback(file) {
		return c, wire.OTALegacyRollback, model.ErrLegacyRollback.Error()
	}
	if model.IsSigned(file) {
		err := model.Verify(file, o.keys)
		switch {
		case err == nil:
		case errors.Is(err, model.ErrUntrustedKey):
			return c, wire.OTAUntrustedKey, fmt.Sprintf("signed by key %s, not among the %d trusted", model.SignerID(file), len(o.keys))
		case errors.Is(err, model.ErrBadSignature):
			return c, wire.OTABadSignature, err.Error()
		default:
			return c, wire.OTAMalformed, err.Error()
		}
	} else if !o.cfg.AllowUnsigned {
		return c, wire.OTAUnsigned, "the file has no signature and ota.allow_unsigned is off"
	}

	v := m.Version
	switch {
	case v <= 0:
		return c, wire.OTAMalformed, fmt.Sprintf("model version %d is not positive", v)
	case v == active:
		if cur, err := o.st.Get(v); err == nil && string(cur) == string(file) {
			return c, wire.OTAAlreadyActive, fmt.Sprintf("version %d is already active", v)
		}
		return c, wire.OTANotNewer, fmt.Sprintf("version %d is the active version, with other bytes", v)
	case v < active:
		return c, wire.OTANotNewer, fmt.Sprintf("version %d is not newer than the active %d (a downgrade must be a signed rollback file: linnet push --rollback --from)", v, active)
	case v > active:
		if w, err := o.st.Withdrawn(v); err != nil {
			return c, wire.OTAStore, err.Error()
		} else if w {
			return c, wire.OTAWithdrawn, fmt.Sprintf("version %d was rolled back on this gateway; publish a new version", v)
		}
	}

	reason, detail := o.vet(m)
	return c, reason, detail
}

// checkRollback verifies a rollback file (signature, not applied before,
// applicable here and now); the store checks all of it again when it
// applies the file, in one transaction.
func (o *OTA) checkRollback(file []byte, active int64) (*candidate, string, string) {
	rb, err := model.OpenRollback(file, o.keys)
	switch {
	case err == nil:
	case errors.Is(err, model.ErrUntrustedKey):
		return nil, wire.OTAUntrustedKey, err.Error()
	case errors.Is(err, model.ErrUnsigned):
		return nil, wire.OTARollbackUnsigned, "a rollback must carry a signature by a trusted key"
	case errors.Is(err, model.ErrBadSignature):
		return nil, wire.OTABadSignature, err.Error()
	case errors.Is(err, model.ErrChecksum):
		return nil, wire.OTACorrupt, err.Error()
	default:
		return nil, wire.OTAMalformed, err.Error()
	}
	m, err := model.Decode(rb.Model)
	if err != nil {
		return nil, wire.OTAMalformed, err.Error()
	}
	c := &candidate{m: m, file: file, rollback: true, rb: rb}
	if used, err := o.st.Consumed(rb.Digest); err != nil {
		return c, wire.OTAStore, err.Error()
	} else if used {
		return c, wire.OTAReplay, fmt.Sprintf("rollback file %x (%d -> %d) was applied before", rb.Digest[:8], rb.From, rb.To)
	}
	if err := rb.Check(active, o.host.Gateway(), o.host.Model(), time.Now()); err != nil {
		return c, wire.OTARollbackStale, err.Error()
	}
	return c, "", ""
}

// vet runs the schema check and the shadow run on m; it returns a reason
// and its detail, or "" when m passes.
func (o *OTA) vet(m *model.Model) (string, string) {
	if sv := o.host.Owner().Current(); sv != nil && !o.cfg.AllowSchemaChange {
		logistic := m.Loss == model.Logistic
		if !slices.Equal(m.Features, sv.Schema.Features) || logistic != sv.Schema.Logistic {
			return wire.OTASchema, fmt.Sprintf("model has %s (classifier %v), the gateway serves %s (classifier %v); set ota.allow_schema_change to accept",
				clipList(m.Features), logistic, clipList(sv.Schema.Features), sv.Schema.Logistic)
		}
	}
	if reason := o.shadowRun(m); reason != "" {
		return wire.OTAShadow, reason
	}
	return "", ""
}

// apply stores and activates c in one store transaction, then swaps the
// serving model and the learner.
func (o *OTA) apply(c *candidate, active int64) (string, string) {
	// Keep the outgoing learner's state under its own version, so a
	// rollback resumes it.
	if r, err := o.host.Owner().Checkpoint(); err != nil {
		o.log.Warn("checkpoint before the switch", "err", err)
	} else if v := r.Diverged; v != nil {
		o.log.Error("the outgoing learner diverged: its last good checkpoint was kept, frozen", "reason", v.Reason)
	}
	v := c.m.Version
	why := fmt.Sprintf("ota: version %d over %d", v, active)
	if c.rollback {
		why = fmt.Sprintf("ota: signed rollback to %d from %d", v, active)
	}
	if c.rb != nil {
		// The store checks the file again and marks it used, in the
		// transaction that applies it: a replay never gets this far.
		_, err := o.st.InstallRollback(c.file, o.host.Gateway(), store.SourceOTA)
		switch {
		case errors.Is(err, store.ErrReplay):
			return wire.OTAReplay, err.Error()
		case errors.Is(err, model.ErrRollbackExpired), errors.Is(err, model.ErrRollbackGateway), errors.Is(err, model.ErrRollbackSource):
			return wire.OTARollbackStale, err.Error()
		case err != nil:
			return wire.OTAStore, err.Error()
		}
	} else if _, err := o.st.Install(c.file, store.SourceOTA, why, false); err != nil {
		return wire.OTAStore, err.Error()
	}
	prev := o.host.Owner().Install(c.m, o.st)
	if pm := prev.Model; pm != nil && !c.rollback && o.cfg.GuardWindow > 0 && active != 0 &&
		slices.Equal(pm.Schema.Features, c.m.Features) && pm.Schema.Logistic == (c.m.Loss == model.Logistic) {
		o.guard.set(newGuard(v, active, prev, o.host.Owner().Current().Meta, o.cfg.guardConfig()))
	} else {
		o.guard.set(nil)
	}
	o.log.Info("model applied", "version", v, "previous", active, "rollback", c.rollback, "scheme", c.m.Scheme)
	return wire.OTAApplied, why
}

// finish publishes, counts and records one decision.
func (o *OTA) finish(ctx context.Context, res wire.OTAResult, reason, detail string, sum *[32]byte) {
	res.Reason, res.Detail = reason, detail
	res.Accepted = reason == wire.OTAApplied || reason == wire.OTAGuardPassed
	res.Gateway, res.Model = o.host.Gateway(), o.host.Model()
	res.Active, _ = o.st.ActiveVersion()
	res.TS = time.Now().UnixMilli()
	o.results.WithLabelValues(reason).Inc()
	var v int64
	if res.Version != nil {
		v = *res.Version
	}
	switch {
	case reason == wire.OTAApplied || reason == wire.OTARolledBack || reason == wire.OTAAlreadyActive || reason == wire.OTAGuardPassed:
		// The store recorded the change itself, or nothing changed.
	case !o.recBudget.take(time.Now()):
		// A flood of bad files must not turn into a flood of commits
		// (two fsyncs each, on flash).
		o.unrecorded.Inc()
	default:
		if err := o.st.Record(store.Event{Action: store.ActionReject, Version: v, Source: store.SourceOTA,
			Reason: reason + ": " + clipDetail(detail)}); err != nil {
			o.log.Error("record the decision", "err", err)
		}
	}
	if sum != nil && reason != wire.OTAStore {
		// Keyed with the active version after the decision: when the
		// active version changes (a later model, a rollback), the payload
		// is decided again.
		if len(o.seen) >= 1024 {
			clear(o.seen)
		}
		o.seen[*sum] = res.Active
	}
	lv := slog.LevelWarn
	if res.Accepted || reason == wire.OTAAlreadyActive {
		lv = slog.LevelInfo
	}
	o.log.Log(ctx, lv, "ota decision", "version", v, "reason", reason, "detail", detail, "topic", res.Topic, "active", res.Active)
	b := res.Encode()
	if err := o.host.Publish(ctx, o.host.Topic(o.cfg.ResultTopic, ""), false, b); err != nil {
		o.log.Warn("publish the OTA result", "err", err)
	}
	if reason == wire.OTAApplied || reason == wire.OTARolledBack {
		if err := o.host.PublishStatus(ctx); err != nil {
			o.log.Warn("publish status", "err", err)
		}
	}
}

func clipDetail(s string) string {
	if len(s) > 300 {
		return strings.ToValidUTF8(s[:300], "") + "..."
	}
	return s
}

func clipList(names []string) string {
	if len(names) > 8 {
		return fmt.Sprintf("%d features [%s ...]", len(names), strings.Join(names[:8], " "))
	}
	return fmt.Sprintf("%d features [%s]", len(names), strings.Join(names, " "))
}

// budget is a token bucket: capacity records at once, then one per every.
type budget struct {
	capacity int
	every    time.Duration
	tokens   int
	last     time.Time
}

func (b *budget) take(now time.Time) bool {
	if b.last.IsZero() {
		b.tokens, b.last = b.capacity, now
	}
	if n := int(now.Sub(b.last) / b.every); n > 0 {
		b.tokens = min(b.capacity, b.tokens+n)
		b.last = b.last.Add(time.Duration(n) * b.every)
	}
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}
