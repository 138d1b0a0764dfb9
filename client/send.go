package client

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon/mqttc"
	"github.com/linnet-edge/linnet/daemon/wire"
	"github.com/linnet-edge/linnet/model"
)

// SendConfig drives Send, the demo client and load generator.
type SendConfig struct {
	MQTT   mqttc.Conn // broker, credentials, TLS, timeouts
	QoS    int
	Data   string // CSV file with a header
	Target string // column left out of the features (sent as the label with Learn)
	Learn  bool   // send the target as "label"
	Device string // the topic's device level
	// Devices, if more than 1, spreads the messages over that many
	// devices in turn: Device-0, Device-1, ... (per-device learning).
	Devices    int
	Features   string   // input topic template, {device} replaced
	Prediction string   // prediction topic filter, {device} replaced
	Errors     string   // errors topic filter
	Rate       float64  // readings per second; 0 sends as fast as the window allows
	Batch      int      // readings per message; 1 sends single readings
	Positional bool     // features as an array in file order instead of by name
	Ignore     []string // columns not to send (timestamps, ids)
	Window     int      // readings sent and not yet answered, at most
	Wait       time.Duration
	// Out, if set, receives every answer: a CSV file (id,prediction,
	// model_version,reason) when its name ends in .csv, JSON lines
	// otherwise.
	Out string
}

// DefaultSendConfig returns the settings linnet send starts from. The
// window stays under mosquitto's default max_queued_messages (1000), past
// which a stock broker drops messages silently.
func DefaultSendConfig() SendConfig {
	return SendConfig{MQTT: defaultConn(), QoS: 1, Device: "send", Features: "linnet/{device}/features",
		Prediction: "linnet/{device}/prediction", Errors: "linnet/+/errors", Batch: 1, Window: 500, Wait: 30 * time.Second}
}

// SendReport is linnet send --json: a stable contract.
type SendReport struct {
	Sent        int `json:"sent"`     // readings
	Messages    int `json:"messages"` // MQTT messages (batches count once)
	Predictions int `json:"predictions"`
	Rejected    int `json:"rejected"` // answered on the errors topic
	// Reasons counts the rejections by reason (see package wire).
	Reasons    map[string]int `json:"reasons"`
	Missing    int            `json:"missing"` // sent and never answered
	Duplicates int            `json:"duplicates"`
	Seconds    float64        `json:"seconds"`
	SentPerSec float64        `json:"sent_per_sec"`
	PredPerSec float64        `json:"predictions_per_sec"`
	Latency    Latencies      `json:"latency_ms"`
}

// Latencies are send-to-prediction times in milliseconds.
type Latencies struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// sendRow is one row as JSON values: numbers as written (reformatted if
// not valid JSON), categories as strings, missing cells as null.
type sendRow struct {
	vals     [][]byte
	label    float32
	hasLabel bool
}

// Send replays a CSV file as readings and collects the predictions by id.
func Send(ctx context.Context, cfg SendConfig) (*SendReport, error) {
	if cfg.Batch < 1 {
		cfg.Batch = 1
	}
	if cfg.Window < cfg.Batch {
		cfg.Window = cfg.Batch
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) {
		return nil, fmt.Errorf("send: rate %v", cfg.Rate)
	}
	names, rows, err := readSendRows(cfg.Data, cfg.Target, cfg.Ignore)
	if err != nil {
		return nil, err
	}
	if cfg.Learn && cfg.Target == "" {
		return nil, errors.New("send: learning needs --target")
	}
	payloads, perMsg := encodeSend(&cfg, names, rows)

	n := len(rows)
	sentAt := make([]int64, n) // unix ns, written before publishing
	gotAt := make([]int64, n)
	var ans []answer // with Out: every answer by id
	if cfg.Out != "" {
		ans = make([]answer, n)
	}
	var mu sync.Mutex
	var preds, rejected, dups, answered int
	reasons := map[string]int{}
	answers := make(chan struct{}, cfg.Window)
	done := make(chan struct{})
	finish := func(id int, now int64, a answer) {
		if id < 0 || id >= n {
			return
		}
		if gotAt[id] != 0 {
			dups++
			return
		}
		gotAt[id] = now
		answered++
		if ans != nil {
			ans[id] = a
		}
		if a.reason != "" {
			rejected++
			reasons[a.reason]++
		} else {
			preds++
		}
		select {
		case answers <- struct{}{}:
		default:
		}
		if answered == n {
			close(done)
		}
	}
	onPred := func(_ paho.Client, m paho.Message) {
		now := time.Now().UnixNano()
		if ans == nil {
			// Only the id is needed: read it without a full JSON decode,
			// which would cost the load generator more CPU than the daemon
			// spends on the reading.
			if id, ok := wire.ScanID(m.Payload()); ok {
				n, ok := wire.IntID(id)
				if !ok {
					return
				}
				mu.Lock()
				finish(n, now, answer{})
				mu.Unlock()
				return
			}
		}
		var p wire.Prediction
		if json.Unmarshal(m.Payload(), &p) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p.Batch != nil {
			for _, b := range p.Batch {
				if id, ok := wire.IntID(b.ID); ok {
					finish(id, now, answer{pred: b.Prediction, version: p.ModelVersion})
				}
			}
			return
		}
		if id, ok := wire.IntID(p.ID); ok {
			finish(id, now, answer{pred: p.Prediction, version: p.ModelVersion})
		}
	}
	onErr := func(_ paho.Client, m paho.Message) {
		now := time.Now().UnixNano()
		var e wire.Error
		if json.Unmarshal(m.Payload(), &e) != nil {
			return
		}
		id, ok := wire.IntID(e.ID)
		if !ok || e.Reason == "" {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		finish(id, now, answer{reason: e.Reason})
	}

	m := cfg.MQTT
	if m.ClientID == "" {
		m.ClientID = mqttc.UniqueID("linnet-send")
	}
	o, err := mqttc.Options(m)
	if err != nil {
		return nil, err
	}
	o.SetCleanSession(true).SetOrderMatters(false).SetAutoReconnect(true).SetMaxReconnectInterval(time.Second)
	c := paho.NewClient(o)
	if err := mqttc.Wait(ctx, c.Connect(), m.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("send: connect %s: %w", m.Broker, err)
	}
	defer mqttc.Disconnect(c, time.Second)
	devices := []string{cfg.Device}
	predTopic := strings.ReplaceAll(cfg.Prediction, "{device}", cfg.Device)
	if cfg.Devices > 1 {
		devices = make([]string, cfg.Devices)
		for k := range devices {
			devices[k] = cfg.Device + "-" + strconv.Itoa(k)
		}
		predTopic = strings.ReplaceAll(cfg.Prediction, "{device}", "+")
	}
	t := c.SubscribeMultiple(map[string]byte{predTopic: byte(cfg.QoS), cfg.Errors: byte(cfg.QoS)}, nil)
	if err := mqttc.Wait(ctx, t, m.OpTimeout); err != nil {
		return nil, fmt.Errorf("send: subscribe: %w", err)
	}
	c.AddRoute(predTopic, onPred)
	c.AddRoute(cfg.Errors, onErr)

	topics := make([]string, len(devices))
	for k, d := range devices {
		topics[k] = strings.ReplaceAll(cfg.Features, "{device}", d)
	}
	pub := mqttc.NewPublisher(c, byte(cfg.QoS), cfg.Window, m.OpTimeout, func(error) {})
	ackCtx, ackCancel := context.WithCancel(context.Background())
	defer ackCancel()
	acked := make(chan struct{})
	go func() { pub.Run(ackCtx); close(acked) }()

	start := time.Now()
	inflight := 0 // readings sent and not answered, approximated from the answer count
	sentReadings := 0
	var sendErr error
	for i, p := range payloads {
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sentReadings) / cfg.Rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		// Keep at most Window readings unanswered, so a slow daemon is
		// measured, not the broker's queue.
		for {
			mu.Lock()
			inflight = sentReadings - answered
			mu.Unlock()
			if inflight+perMsg[i] <= cfg.Window || ctx.Err() != nil {
				break
			}
			select {
			case <-answers:
			case <-time.After(cfg.Wait):
				sendErr = fmt.Errorf("send: no answer for %v with %d readings outstanding", cfg.Wait, inflight)
			case <-ctx.Done():
			}
			if sendErr != nil {
				break
			}
		}
		if sendErr != nil || ctx.Err() != nil {
			break
		}
		now := time.Now().UnixNano()
		first := sentReadings
		for k := 0; k < perMsg[i]; k++ {
			sentAt[first+k] = now
		}
		mu.Lock()
		sentReadings += perMsg[i]
		mu.Unlock()
		if err := pub.Publish(ctx, topics[i%len(topics)], false, p, nil); err != nil {
			break
		}
	}
	sendEnd := time.Now()
	mu.Lock()
	allSent := sentReadings
	mu.Unlock()
	if allSent == n {
		select {
		case <-done:
		case <-time.After(cfg.Wait):
		case <-ctx.Done():
		}
	}
	pub.Close()
	ackCancel()
	<-acked

	mu.Lock()
	defer mu.Unlock()
	r := &SendReport{Sent: allSent, Messages: len(payloads), Predictions: preds, Rejected: rejected, Reasons: reasons,
		Duplicates: dups, Missing: allSent - answered}
	if cfg.Out != "" {
		if err := writeAnswers(cfg.Out, gotAt, ans); err != nil {
			return r, err
		}
	}
	var lat []float64
	var last int64
	for i := 0; i < allSent; i++ {
		if gotAt[i] == 0 {
			continue
		}
		lat = append(lat, float64(gotAt[i]-sentAt[i])/1e6)
		last = max(last, gotAt[i])
	}
	end := sendEnd
	if last > 0 {
		end = time.Unix(0, last)
	}
	r.Seconds = end.Sub(start).Seconds()
	if s := sendEnd.Sub(start).Seconds(); s > 0 {
		r.SentPerSec = float64(allSent) / s
	}
	if r.Seconds > 0 {
		r.PredPerSec = float64(preds) / r.Seconds
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		q := func(p float64) float64 { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
		var sum float64
		for _, v := range lat {
			sum += v
		}
		r.Latency = Latencies{P50: q(0.50), P90: q(0.90), P99: q(0.99), Max: lat[len(lat)-1], Mean: sum / float64(len(lat))}
	}
	if sendErr != nil {
		return r, sendErr
	}
	return r, ctx.Err()
}

// answer is what came back for one reading.
type answer struct {
	pred    float64
	version int64
	reason  string // rejected: the errors topic's reason
}

// writeAnswers writes every answered reading, by id: CSV when path ends in
// .csv, JSON lines otherwise.
func writeAnswers(path string, gotAt []int64, ans []answer) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("send --out: %w", err)
	}
	w := bufio.NewWriter(f)
	csv := strings.HasSuffix(strings.ToLower(path), ".csv")
	if csv {
		w.WriteString("id,prediction,model_version,reason\n")
	}
	var b []byte
	for id, a := range ans {
		if gotAt[id] == 0 {
			continue
		}
		b = b[:0]
		switch {
		case csv && a.reason != "":
			b = fmt.Appendf(b, "%d,,,%s\n", id, a.reason)
		case csv:
			b = fmt.Appendf(b, "%d,%s,%d,\n", id, strconv.FormatFloat(a.pred, 'g', -1, 64), a.version)
		case a.reason != "":
			b = fmt.Appendf(b, `{"id":%d,"reason":`, id)
			b = wire.AppendString(b, a.reason)
			b = append(b, "}\n"...)
		default:
			b = fmt.Appendf(b, `{"id":%d,"prediction":%s,"model_version":%d}`+"\n", id, strconv.FormatFloat(a.pred, 'g', -1, 64), a.version)
		}
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("send --out: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("send --out: %w", err)
	}
	return nil
}

// readSendRows reads a CSV file as train does (the delimiter detected,
// quoted fields, text columns, missing cells): every column but the
// target and ignore is sent, a text column's cells as strings, a missing
// cell ("", NA, null...) as null.
func readSendRows(path, target string, ignore []string) ([]string, []sendRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	defer f.Close()
	t, err := model.OpenTable(f, model.TableOptions{Target: target, Ignore: ignore})
	if err != nil {
		return nil, nil, fmt.Errorf("send %s: %w", path, err)
	}
	names, text := t.Inputs(), t.IsText()
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, nil, fmt.Errorf("send %s: %w", path, err)
	}
	cr := csv.NewReader(f)
	cr.Comma, cr.FieldsPerRecord, cr.ReuseRecord, cr.LazyQuotes = rune(t.Delimiter()), -1, true, true
	header, err := cr.Read()
	if err != nil {
		return nil, nil, fmt.Errorf("send %s: %w", path, err)
	}
	col := make([]int, len(names)) // file column of each input
	tcol := -1
	for i, h := range header {
		h = strings.TrimSpace(h)
		if h == target && target != "" {
			tcol = i
		}
		if k := slices.Index(names, h); k >= 0 {
			col[k] = i
		}
	}
	var rows []sendRow
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("send %s: %w", path, err)
		}
		if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
			continue // a blank line
		}
		row := sendRow{vals: make([][]byte, len(names))}
		for k, i := range col {
			var cell string
			if i < len(rec) {
				cell = strings.TrimSpace(rec[i])
			}
			row.vals[k] = jsonCell(cell, text[k])
		}
		if tcol >= 0 && tcol < len(rec) && !model.IsMissingText(rec[tcol]) {
			y, err := strconv.ParseFloat(strings.TrimSpace(rec[tcol]), 32)
			if err != nil {
				return nil, nil, fmt.Errorf("send %s: row %d: target %q is not a number", path, len(rows)+1, rec[tcol])
			}
			row.label, row.hasLabel = float32(y), true
		}
		rows = append(rows, row)
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("send %s: no rows", path)
	}
	return names, rows, nil
}

// jsonCell is a CSV cell as a JSON value: null when missing, a string for
// a text column or text that is not a finite number, else the number as
// written when that is valid JSON.
func jsonCell(cell string, text bool) []byte {
	if model.IsMissingText(cell) {
		return []byte("null")
	}
	if !text {
		if v, err := strconv.ParseFloat(cell, 64); err == nil && !math.IsInf(v, 0) && !math.IsNaN(v) {
			if c := cell[0]; (c == '-' || (c >= '0' && c <= '9')) && json.Valid([]byte(cell)) {
				return []byte(cell)
			}
			return strconv.AppendFloat(nil, v, 'g', -1, 64)
		}
	}
	return wire.AppendString(nil, cell)
}

// encodeSend builds every payload up front, so encoding is not measured;
// the id of a reading is its row index.
func encodeSend(cfg *SendConfig, names []string, rows []sendRow) ([][]byte, []int) {
	var payloads [][]byte
	var per []int
	one := func(b []byte, i int) []byte {
		b = append(b, `{"id":`...)
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `,"features":`...)
		if cfg.Positional {
			b = append(b, '[')
			for k, v := range rows[i].vals {
				if k > 0 {
					b = append(b, ',')
				}
				b = append(b, v...)
			}
			b = append(b, ']')
		} else {
			b = append(b, '{')
			for k, v := range rows[i].vals {
				if k > 0 {
					b = append(b, ',')
				}
				b = wire.AppendString(b, names[k])
				b = append(b, ':')
				b = append(b, v...)
			}
			b = append(b, '}')
		}
		if cfg.Learn && rows[i].hasLabel {
			b = append(b, `,"label":`...)
			b = wire.AppendFloat32(b, rows[i].label)
		}
		return append(b, '}')
	}
	for i := 0; i < len(rows); i += cfg.Batch {
		j := min(i+cfg.Batch, len(rows))
		var b []byte
		if cfg.Batch == 1 {
			b = one(b, i)
		} else {
			b = append(b, `{"batch":[`...)
			for k := i; k < j; k++ {
				if k > i {
					b = append(b, ',')
				}
				b = one(b, k)
			}
			b = append(b, "]}"...)
		}
		payloads = append(payloads, b)
		per = append(per, j-i)
	}
	return payloads, per
}

// defaultConn is how a client reaches a broker unless told otherwise.
func defaultConn() mqttc.Conn {
	return mqttc.Conn{Broker: "tcp://127.0.0.1:1883", KeepAlive: 30 * time.Second, ConnectTimeout: 10 * time.Second, OpTimeout: 10 * time.Second}
}
