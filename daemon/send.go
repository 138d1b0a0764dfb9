package daemon

import (
	"context"
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

	"github.com/linnet-edge/linnet/model"
)

// SendConfig drives Send, the demo client and load generator.
type SendConfig struct {
	MQTT       MQTTConfig // broker, credentials, TLS, QoS, timeouts
	Data       string     // CSV file with a header
	Target     string     // column left out of the features (sent as the label with Learn)
	Learn      bool       // send the target as "label"
	Device     string     // the topic's device level
	Features   string     // input topic template, {device} replaced
	Prediction string     // prediction topic filter, {device} replaced
	Errors     string     // errors topic filter
	Rate       float64    // readings per second; 0 sends as fast as the window allows
	Batch      int        // readings per message; 1 sends single readings
	Positional bool       // features as an array in file order instead of by name
	Window     int        // readings sent and not yet answered, at most
	Wait       time.Duration
}

// DefaultSendConfig returns the settings linnet send starts from.
func DefaultSendConfig() SendConfig {
	d := Default()
	return SendConfig{MQTT: d.MQTT, Device: "send", Features: "linnet/{device}/features",
		Prediction: "linnet/{device}/prediction", Errors: "linnet/+/errors", Batch: 1, Window: 2000, Wait: 30 * time.Second}
}

// SendReport is linnet send --json: a stable contract.
type SendReport struct {
	Sent        int       `json:"sent"`     // readings
	Messages    int       `json:"messages"` // MQTT messages (batches count once)
	Predictions int       `json:"predictions"`
	Rejected    int       `json:"rejected"` // answered on the errors topic
	Missing     int       `json:"missing"`
	Duplicates  int       `json:"duplicates"`
	Seconds     float64   `json:"seconds"`
	SentPerSec  float64   `json:"sent_per_sec"`
	PredPerSec  float64   `json:"predictions_per_sec"`
	Latency     Latencies `json:"latency_ms"`
}

// Latencies are send-to-prediction times in milliseconds.
type Latencies struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type sendRow struct {
	x     []float32
	label float32
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
	names, rows, err := readSendRows(cfg.Data, cfg.Target)
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
	var mu sync.Mutex
	var preds, rejected, dups, answered int
	answers := make(chan struct{}, cfg.Window)
	done := make(chan struct{})
	finish := func(id int, now int64, rej bool) {
		if id < 0 || id >= n {
			return
		}
		if gotAt[id] != 0 {
			dups++
			return
		}
		gotAt[id] = now
		answered++
		if rej {
			rejected++
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
	type idOnly struct {
		ID    json.RawMessage `json:"id"`
		Batch []struct {
			ID json.RawMessage `json:"id"`
		} `json:"batch"`
	}
	onPred := func(_ paho.Client, m paho.Message) {
		now := time.Now().UnixNano()
		// The daemon writes a single prediction's id first: read it without
		// a JSON decode, which would cost the load generator more CPU than
		// the daemon spends on the reading.
		if id, ok := leadingID(m.Payload()); ok {
			mu.Lock()
			finish(id, now, false)
			mu.Unlock()
			return
		}
		var v idOnly
		if json.Unmarshal(m.Payload(), &v) != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if v.Batch != nil {
			for _, b := range v.Batch {
				finish(parseID(b.ID), now, false)
			}
			return
		}
		finish(parseID(v.ID), now, false)
	}
	onErr := func(_ paho.Client, m paho.Message) {
		now := time.Now().UnixNano()
		var v struct {
			Topic string          `json:"topic"`
			ID    json.RawMessage `json:"id"`
		}
		if json.Unmarshal(m.Payload(), &v) != nil || v.ID == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		finish(parseID(v.ID), now, true)
	}

	m := cfg.MQTT
	if m.ClientID == "" {
		m.ClientID = fmt.Sprintf("linnet-send-%d", os.Getpid())
	}
	o := paho.NewClientOptions().AddBroker(brokerURL(m.Broker)).SetClientID(m.ClientID).SetCleanSession(true).
		SetOrderMatters(false).SetKeepAlive(m.KeepAlive).SetConnectTimeout(m.ConnectTimeout).SetWriteTimeout(m.OpTimeout).
		SetAutoReconnect(true).SetMaxReconnectInterval(time.Second).SetCustomOpenConnectionFn(openConn)
	if m.Username != "" {
		o.SetUsername(m.Username)
		if m.PasswordFile != "" {
			pw, err := readPassword(m.PasswordFile)
			if err != nil {
				return nil, err
			}
			o.SetPassword(pw)
		}
	}
	if tc, err := tlsConfig(&m); err != nil {
		return nil, err
	} else if tc != nil {
		o.SetTLSConfig(tc)
	}
	c := paho.NewClient(o)
	if err := waitToken(ctx, c.Connect(), m.ConnectTimeout); err != nil {
		return nil, fmt.Errorf("send: connect %s: %w", m.Broker, err)
	}
	defer func() {
		dc := make(chan struct{})
		go func() { c.Disconnect(250); close(dc) }()
		select {
		case <-dc:
		case <-time.After(m.DisconnectTimeout):
		}
	}()
	predTopic := strings.ReplaceAll(cfg.Prediction, "{device}", cfg.Device)
	t := c.SubscribeMultiple(map[string]byte{predTopic: byte(m.QoS), cfg.Errors: byte(m.QoS)}, nil)
	if err := waitToken(ctx, t, m.OpTimeout); err != nil {
		return nil, fmt.Errorf("send: subscribe: %w", err)
	}
	c.AddRoute(predTopic, onPred)
	c.AddRoute(cfg.Errors, onErr)

	topic := strings.ReplaceAll(cfg.Features, "{device}", cfg.Device)
	pub := newPublisher(c, byte(m.QoS), cfg.Window, m.OpTimeout, func(error) {})
	ackCtx, ackCancel := context.WithCancel(context.Background())
	defer ackCancel()
	acked := make(chan struct{})
	go func() { pub.ack(ackCtx); close(acked) }()

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
		if err := pub.publish(ctx, topic, false, p); err != nil {
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
	close(pub.tokens)
	ackCancel()
	<-acked

	mu.Lock()
	defer mu.Unlock()
	r := &SendReport{Sent: allSent, Messages: len(payloads), Predictions: preds, Rejected: rejected, Duplicates: dups, Missing: allSent - answered}
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

func parseID(b json.RawMessage) int {
	id, err := strconv.Atoi(string(b))
	if err != nil {
		return -1
	}
	return id
}

func readSendRows(path, target string) ([]string, []sendRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("send: %w", err)
	}
	defer f.Close()
	cr, err := model.NewCSVReader(f, model.CSVOptions{Target: target})
	if err != nil {
		return nil, nil, fmt.Errorf("send %s: %w", path, err)
	}
	names := cr.Features()
	var rows []sendRow
	for {
		x := make([]float32, len(names))
		y, err := cr.Next(x)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, fmt.Errorf("send %s: %w", path, err)
		}
		rows = append(rows, sendRow{x: x, label: y})
	}
	if len(rows) == 0 {
		return nil, nil, fmt.Errorf("send %s: no rows", path)
	}
	return names, rows, nil
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
			for k, v := range rows[i].x {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendFloat32(b, v)
			}
			b = append(b, ']')
		} else {
			b = append(b, '{')
			for k, v := range rows[i].x {
				if k > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, names[k])
				b = append(b, ':')
				b = appendFloat32(b, v)
			}
			b = append(b, '}')
		}
		if cfg.Learn {
			b = append(b, `,"label":`...)
			b = appendFloat32(b, rows[i].label)
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

// leadingID reads N from a payload starting with {"id":N, .
func leadingID(b []byte) (int, bool) {
	const prefix = `{"id":`
	if len(b) < len(prefix)+2 || string(b[:len(prefix)]) != prefix {
		return 0, false
	}
	n, i := 0, len(prefix)
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9' && i < len(prefix)+9; i++ {
		n = n*10 + int(b[i]-'0')
	}
	if i == len(prefix) || i >= len(b) || b[i] != ',' {
		return 0, false
	}
	return n, true
}
