package daemon

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestConfigLayers(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "linnet.toml")
	os.WriteFile(path, []byte(`
gateway = "from-file"
[mqtt]
broker = "tcp://127.0.0.1:1"
qos = 0
keepalive = "45s"
[pipeline]
workers = 3
[[subscriptions]]
topic = "plant/+/line/+/raw"
format = "raw"
`), 0o600)
	env := map[string]string{"LINNET_GATEWAY": "from-env", "LINNET_PIPELINE_WORKERS": "5", "LINNET_TRUST": "a.pub, b.pub"}
	c, err := LoadConfig(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if c.Gateway != "from-env" || c.Pipeline.Workers != 5 || c.MQTT.QoS != 0 || c.MQTT.KeepAlive != 45*time.Second ||
		len(c.Trust) != 2 || c.Trust[1] != "b.pub" || len(c.Subscriptions) != 1 || c.Subscriptions[0].Format != "raw" {
		t.Errorf("layers: %+v", c)
	}
	c.Trust = nil
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.MQTT.ClientID != "linnet-from-env" {
		t.Errorf("client id %q", c.MQTT.ClientID)
	}
	if lvl, _ := deviceLevel(c.Subscriptions[0].Topic); lvl != 1 {
		t.Errorf("device level %d", lvl)
	}
	b, err := c.TOML()
	if err != nil || !strings.Contains(string(b), `gateway = "from-env"`) {
		t.Errorf("TOML: %v\n%s", err, b)
	}

	os.WriteFile(path, []byte("gatewya = \"typo\"\n"), 0o600)
	if _, err := LoadConfig(path, nil); err == nil || !strings.Contains(err.Error(), "gatewya") {
		t.Errorf("unknown key: %v", err)
	}
	if _, err := LoadConfig("", func(k string) (string, bool) { return "x", k == "LINNET_MQTT_QOS" }); err == nil {
		t.Error("bad env value accepted")
	}
}

func TestConfigReportsEveryProblem(t *testing.T) {
	c := Default()
	c.Gateway = "bad/id"
	c.MQTT.Broker = "http://x"
	c.MQTT.QoS = 3
	c.MQTT.CertFile = "/nonexistent/cert.pem"
	c.MQTT.OpTimeout = 0
	c.Topics.Prediction = "linnet/out"
	c.Subscriptions = []Subscription{{Topic: "linnet/#", Format: "xml"}}
	c.Pipeline.Workers = -1
	c.Metrics.Listen = "0.0.0.0:9464"
	err := c.Validate()
	var ce *ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	for _, want := range []string{"gateway", "mqtt.broker", "mqtt.qos", "cert_file and key_file", "mqtt.cert_file", "mqtt.op_timeout",
		"topics.prediction", "subscriptions[0].topic", "subscriptions[0].format", "pipeline.workers", "metrics.listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("no problem reported for %s", want)
		}
	}
	if len(ce.Problems) < 11 {
		t.Errorf("%d problems:\n%v", len(ce.Problems), err)
	}
}

func TestTopics(t *testing.T) {
	for _, c := range []struct {
		filter, topic string
		want          bool
	}{
		{"linnet/+/features", "linnet/dev/features", true},
		{"linnet/+/features", "linnet/dev/x/features", false},
		{"linnet/+/features", "linnet//features", true},
		{"linnet/#", "linnet/a/b", true},
		{"a/+", "a", false},
		{"a/+/+", "a/b/c", true},
	} {
		if got := matchTopic(c.filter, c.topic); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.filter, c.topic, got)
		}
	}
	if d, ok := levelAt("plant/p1/line/l2/raw", 3); !ok || d != "l2" {
		t.Errorf("levelAt %q %v", d, ok)
	}
	if _, ok := levelAt("a/b", 3); ok {
		t.Error("levelAt past the end")
	}
}

func TestDecode(t *testing.T) {
	s := newSchema([]string{"a", "b", "c"}, false)
	cls := newSchema([]string{"a", "b", "c"}, true)
	raw := func(v ...float32) []byte {
		b := make([]byte, 4*len(v))
		for i, x := range v {
			binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
		}
		return b
	}
	for _, c := range []struct {
		name, format string
		payload      []byte
		sc           *schema
		want         [][]float32 // nil: rejected
		reason       string
		label        bool
		batch        bool
	}{
		{"positional", "json", []byte(`{"features":[1,2,3]}`), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"named", "json", []byte(`{"features":{"c":3,"b":2,"a":1},"label":4,"id":"x"}`), s, [][]float32{{1, 2, 3}}, "", true, false},
		{"batch", "json", []byte(`{"batch":[{"features":[1,2,3]},{"features":{"a":4,"b":5,"c":6}}]}`), s, [][]float32{{1, 2, 3}, {4, 5, 6}}, "", false, true},
		{"csv", "csv", []byte("1, 2,3\r\n"), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"csv label", "csv", []byte("1,2,3,0.5"), s, [][]float32{{1, 2, 3}}, "", true, false},
		{"csv lines", "csv", []byte("1,2,3\n4,5,6\n"), s, [][]float32{{1, 2, 3}, {4, 5, 6}}, "", false, true},
		{"raw", "raw", raw(1, 2, 3), s, [][]float32{{1, 2, 3}}, "", false, false},
		{"raw label", "raw", raw(1, 2, 3, 1), cls, [][]float32{{1, 2, 3}}, "", true, false},
		{"raw short", "raw", raw(1, 2), s, nil, ReasonFeatureCount, false, false},
		{"raw odd", "raw", []byte{1, 2, 3}, s, nil, ReasonMalformed, false, false},
		{"raw nan", "raw", raw(1, float32(math.NaN()), 3), s, nil, ReasonNonFinite, false, false},
		{"raw inf label", "raw", raw(1, 2, 3, float32(math.Inf(1))), s, nil, ReasonBadLabel, false, false},
		{"class label", "json", []byte(`{"features":[1,2,3],"label":0.5}`), cls, nil, ReasonBadLabel, false, false},
		{"csv nan", "csv", []byte("1,NaN,3"), s, nil, ReasonNonFinite, false, false},
		{"csv huge", "csv", []byte("1,1e39,3"), s, nil, ReasonNonFinite, false, false},
		{"csv text", "csv", []byte("1,x,3"), s, nil, ReasonMalformed, false, false},
		{"csv count", "csv", []byte("1,2"), s, nil, ReasonFeatureCount, false, false},
		{"json names", "json", []byte(`{"features":{"a":1,"b":2,"d":3}}`), s, nil, ReasonFeatureNames, false, false},
		{"json null", "json", []byte(`{"features":null}`), s, nil, ReasonMalformed, false, false},
		{"json nulls", "json", []byte(`{"features":[1,null,3]}`), s, [][]float32{{1, 0, 3}}, "", false, false},
		{"json id", "json", []byte(`{"id":[1],"features":[1,2,3]}`), s, nil, ReasonBadID, false, false},
		{"json ts", "json", []byte(`{"ts":true,"features":[1,2,3]}`), s, nil, ReasonBadID, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			rs, batch, rj := decode(c.format, c.payload, c.sc, 16)
			if c.want == nil {
				if rj == nil || rj.reason != c.reason {
					t.Fatalf("got %v, want reason %s", rj, c.reason)
				}
				return
			}
			if rj != nil {
				t.Fatal(rj)
			}
			if batch != c.batch || len(rs) != len(c.want) {
				t.Fatalf("batch %v, %d readings", batch, len(rs))
			}
			for i := range rs {
				if fmt.Sprint(rs[i].x) != fmt.Sprint(c.want[i]) || rs[i].hasLabel != c.label {
					t.Errorf("reading %d: %v label %v", i, rs[i].x, rs[i].hasLabel)
				}
			}
		})
	}
}

// FuzzDecode: no payload panics the decoder, and what it accepts is finite
// and of the model's width.
func FuzzDecode(f *testing.F) {
	for _, seed := range []string{`{"features":[1,2,3]}`, `{"features":{"a":1,"b":2,"c":3},"label":1,"id":"x","ts":5}`,
		`{"batch":[{"features":[1,2,3]}]}`, "1,2,3\n4,5,6", "\x00\x00\x80\x3f\x00\x00\x00\x40\x00\x00\x40\x40"} {
		f.Add([]byte(seed))
	}
	s := newSchema([]string{"a", "b", "c"}, true)
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []string{"json", "csv", "raw"} {
			rs, _, rj := decode(format, b, s, 64)
			if rj != nil {
				if rj.reason == "" || !json.Valid(appendJSONString(nil, rj.detail)) {
					t.Fatalf("bad reject %+v", rj)
				}
				continue
			}
			for _, r := range rs {
				if len(r.x) != 3 {
					t.Fatalf("width %d", len(r.x))
				}
				for _, v := range r.x {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("non-finite accepted from %q", b)
					}
				}
				if r.hasLabel && r.label != 0 && r.label != 1 {
					t.Fatalf("classifier label %v accepted", r.label)
				}
				if r.id != nil && !json.Valid(r.id) {
					t.Fatalf("id %q", r.id)
				}
			}
		}
	})
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"plain", "quote\"back\\slash", "ctl\x00\x1f\n\t", "bad\xffutf8", "ünï"} {
		var got string
		if err := json.Unmarshal(appendJSONString(nil, s), &got); err != nil {
			t.Errorf("%q: %v", s, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want {
			t.Errorf("%q round-tripped to %q", s, got)
		}
	}
}

// The systemd protocol: READY=1 once subscribed, STOPPING=1 at shutdown,
// on the datagram socket in $NOTIFY_SOCKET.
func TestSystemdNotify(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "20000")
	t.Setenv("WATCHDOG_PID", fmt.Sprint(os.Getpid()))
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, cfg, newFake())
	var got []string
	buf := make([]byte, 512)
	read := func(want string) {
		t.Helper()
		for {
			conn.SetReadDeadline(time.Now().Add(patience))
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("waiting for %s: %v (got %v)", want, err, got)
			}
			got = append(got, string(buf[:n]))
			if strings.HasPrefix(string(buf[:n]), want) {
				return
			}
		}
	}
	read("READY=1")
	read("WATCHDOG=1")
	d.stop(t)
	read("STOPPING=1")
	_ = context.Background
}
