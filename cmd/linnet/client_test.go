package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/linnet-edge/linnet/daemon"
	"github.com/linnet-edge/linnet/model"
)

// startGateway runs a daemon in-process on the embedded broker (port 0)
// serving m, and returns its broker URL.
func startGateway(t *testing.T, gateway, modelPath string) string {
	t.Helper()
	cfg := daemon.Default()
	cfg.Gateway, cfg.Model = gateway, modelPath
	return runGateway(t, cfg).BrokerURL()
}

// runGateway runs a daemon on cfg, on the embedded broker unless cfg
// names one, with its own data directory and no learning.
func runGateway(t *testing.T, cfg *daemon.Config) *daemon.Service {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Embedded, cfg.Metrics.Listen = "127.0.0.1:0", ""
	cfg.Learning.Enabled = false
	return runDaemon(t, cfg)
}

// runDaemon runs a daemon in-process on cfg until the test ends, once it
// is connected and subscribed.
func runDaemon(t *testing.T, cfg *daemon.Config) *daemon.Service {
	t.Helper()
	s, err := daemon.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Ready():
	case err := <-done:
		t.Fatal(err)
	case <-time.After(60 * time.Second):
		t.Fatal("gateway not ready")
	}
	return s
}

// v1Model is a model with features the rows below fit, as a file.
func v1Model(t *testing.T, dir string) (string, *model.Model) {
	t.Helper()
	m, _, err := model.ReadFile(filepath.Join("..", "..", "model", "testdata", "v1-f32.lnm"))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "m.lnm")
	b, _ := m.MarshalBinary()
	if err := model.WriteFile(p, b); err != nil {
		t.Fatal(err)
	}
	return p, m
}

// rowsFile writes a CSV file of n rows under a header, cell(k, i) the
// value of row k's column i, and returns its path.
func rowsFile(t *testing.T, dir string, header []string, n int, cell func(k, i int) string) string {
	t.Helper()
	var csv strings.Builder
	csv.WriteString(strings.Join(header, ",") + "\n")
	for k := range n {
		cells := make([]string, len(header))
		for i := range cells {
			cells[i] = cell(k, i)
		}
		csv.WriteString(strings.Join(cells, ",") + "\n")
	}
	p := filepath.Join(dir, "rows.csv")
	if err := os.WriteFile(p, []byte(csv.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// linnet send tells the truth: rejected readings make it exit non-zero
// with the reasons and their counts, and --out writes every answer.
func TestSendTruth(t *testing.T) {
	dir := t.TempDir()
	mp, m := v1Model(t, dir)
	url := startGateway(t, "gw-send", mp)
	data := rowsFile(t, dir, m.Features, 22, func(k, i int) string {
		switch k {
		case 20, 21: // finite features whose prediction is not: rejected as non_finite
			return []string{"3e38", "-3e38"}[k-20]
		}
		return fmt.Sprint(k + i)
	})
	for _, out := range []string{filepath.Join(dir, "answers.csv"), filepath.Join(dir, "answers.jsonl")} {
		stdout, err := linnet(t, "send", "--broker", url, "--data", data, "--positional", "--out", out)
		if err == nil {
			t.Fatalf("send exited 0 with rejected readings:\n%s", stdout)
		}
		if !strings.Contains(err.Error(), "2 of 22 readings rejected") || !strings.Contains(stdout, "rejected: non_finite 2") {
			t.Errorf("error %v, output:\n%s", err, stdout)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		lines, rejected := 0, 0
		for sc.Scan() {
			line := sc.Text()
			if strings.HasSuffix(out, ".csv") {
				if lines == 0 && line != "id,prediction,model_version,reason" {
					t.Errorf("header %q", line)
				}
				if strings.HasSuffix(line, ",non_finite") {
					rejected++
				}
			} else {
				var v map[string]any
				if err := json.Unmarshal([]byte(line), &v); err != nil {
					t.Fatalf("%s: %q: %v", out, line, err)
				}
				if v["reason"] == "non_finite" {
					rejected++
				} else if v["model_version"] != float64(m.Version) {
					t.Errorf("answer %v", v)
				}
			}
			lines++
		}
		f.Close()
		want := 22
		if strings.HasSuffix(out, ".csv") {
			want++
		}
		if lines != want || rejected != 2 {
			t.Errorf("%s: %d lines, %d rejections", out, lines, rejected)
		}
	}
}

// linnet push waits only for the gateways online by their retained
// status, and fails at once for a gateway nobody knows, naming the known.
func TestPushTruth(t *testing.T) {
	dir := t.TempDir()
	mp, m := v1Model(t, dir)
	url := startGateway(t, "gw-push", mp)
	key := filepath.Join(dir, "KEY")
	if _, err := linnet(t, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	m.Version++
	b, _ := m.MarshalBinary()
	next := filepath.Join(dir, "m2.lnm")
	if err := model.WriteFile(next, b); err != nil {
		t.Fatal(err)
	}

	out, err := linnet(t, "push", "--broker", url, "--key", key, "--model", next, "--gateway", "nope", "--timeout", "10m")
	if err == nil || !strings.Contains(err.Error(), "unknown gateway") || !strings.Contains(err.Error(), "gw-push") {
		t.Fatalf("push to an unknown gateway: %v\n%s", err, out)
	}

	// A fleet push: the one online gateway answers (it does not trust the
	// key: untrusted_key), and push stops there, long before --timeout.
	out, err = linnet(t, "push", "--broker", url, "--key", key, "--model", next, "--timeout", "10m", "--json")
	var rep struct {
		Online  []string `json:"online"`
		Waited  []string `json:"waited"`
		Results []struct {
			Gateway string `json:"gateway"`
			Reason  string `json:"reason"`
		} `json:"results"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("%v: %s", jerr, out)
	}
	if err == nil || len(rep.Online) != 1 || rep.Online[0] != "gw-push" || len(rep.Waited) != 1 ||
		len(rep.Results) != 1 || rep.Results[0].Reason != "untrusted_key" {
		t.Errorf("fleet push: %v %+v", err, rep)
	}
}

// push --name pushes to one model's topics on gateways serving several,
// waits only for the gateways whose status lists it, and the result
// names the model.
func TestPushName(t *testing.T) {
	dir := t.TempDir()
	mp, m := v1Model(t, dir)
	key := filepath.Join(dir, "KEY")
	if _, err := linnet(t, "keygen", "--out", key); err != nil {
		t.Fatal(err)
	}
	cfg := daemon.Default()
	cfg.Gateway, cfg.Trust = "gw-two", []string{key + ".pub"}
	cfg.OTA.Enabled, cfg.OTA.GuardWindow = true, 0
	cfg.Models = []daemon.ModelConfig{{Name: "default", File: mp},
		{Name: "hvac", File: mp, Subscriptions: []daemon.Subscription{{Topic: "site/hvac/+/features", Format: "json"}}}}
	two := runGateway(t, cfg)
	one := daemon.Default()
	one.Gateway, one.Model, one.MQTT.Broker = "gw-one", mp, two.BrokerURL()
	runGateway(t, one)

	m.Version++
	b, _ := m.MarshalBinary()
	next := filepath.Join(dir, "m2.lnm")
	if err := model.WriteFile(next, b); err != nil {
		t.Fatal(err)
	}
	out, err := linnet(t, "push", "--broker", two.BrokerURL(), "--key", key, "--model", next, "--name", "hvac", "--timeout", "10m", "--json")
	var rep struct {
		Topic   string   `json:"topic"`
		Online  []string `json:"online"`
		Waited  []string `json:"waited"`
		Results []struct {
			Gateway, Reason, Model string
		} `json:"results"`
	}
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("%v %v: %s", err, jerr, out)
	}
	if err != nil || rep.Topic != "linnet/ota/hvac" || strings.Join(rep.Online, " ") != "gw-two" || strings.Join(rep.Waited, " ") != "gw-two" ||
		len(rep.Results) != 1 || rep.Results[0].Reason != "applied" || rep.Results[0].Model != "hvac" {
		t.Errorf("push --name hvac: %v %+v", err, rep)
	}
	out, err = linnet(t, "push", "--broker", two.BrokerURL(), "--key", key, "--model", next, "--name", "hvac", "--gateway", "gw-one")
	if err == nil || !strings.Contains(err.Error(), `does not serve a model named "hvac"`) {
		t.Errorf("push --name hvac to a gateway without it: %v\n%s", err, out)
	}
}

// linnet send --devices N spreads the readings over N devices in turn and
// collects every device's predictions.
func TestSendDevices(t *testing.T) {
	dir := t.TempDir()
	mp, m := v1Model(t, dir)
	url := startGateway(t, "gw-send-devices", mp)
	data := rowsFile(t, dir, m.Features, 20, func(k, i int) string { return fmt.Sprint(k + i) })
	o := paho.NewClientOptions().AddBroker(url).SetClientID("send-devices-watch")
	c := paho.NewClient(o)
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	var mu sync.Mutex
	topics := map[string]int{}
	tok := c.Subscribe("linnet/+/prediction", 1, func(_ paho.Client, msg paho.Message) {
		mu.Lock()
		topics[msg.Topic()]++
		mu.Unlock()
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}
	stdout, err := linnet(t, "send", "--broker", url, "--data", data, "--positional", "--devices", "4", "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, stdout)
	}
	var r struct{ Predictions int }
	if err := json.Unmarshal([]byte(stdout), &r); err != nil || r.Predictions != 20 {
		t.Errorf("report %s: %v", stdout, err)
	}
	want := map[string]int{}
	for k := range 4 {
		want[fmt.Sprintf("linnet/send-%d/prediction", k)] = 5
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := fmt.Sprint(topics)
		mu.Unlock()
		if got == fmt.Sprint(want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("predictions by topic %s, want %v", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
