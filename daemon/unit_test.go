package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/linnet-edge/linnet/daemon/mqttc"
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
		if got := mqttc.Match(c.filter, c.topic); got != c.want {
			t.Errorf("match(%q, %q) = %v", c.filter, c.topic, got)
		}
	}
	if d, ok := mqttc.Level("plant/p1/line/l2/raw", 3); !ok || d != "l2" {
		t.Errorf("levelAt %q %v", d, ok)
	}
	if _, ok := mqttc.Level("a/b", 3); ok {
		t.Error("levelAt past the end")
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
	cfg.MQTT.Embedded = "127.0.0.1:0" // the daemon binds it: no port probing
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
