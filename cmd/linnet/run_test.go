package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func TestRunPrintConfig(t *testing.T) {
	t.Setenv("LINNET_PIPELINE_WORKERS", "3")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--print-config", "--gateway", "gw-cli", "--broker", "tcp://127.0.0.1:1", "--metrics", ""}, &out, &errb)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`gateway = "gw-cli"`, `broker = "tcp://127.0.0.1:1"`, `client_id = "linnet-gw-cli"`, "workers = 3", `listen = ""`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("no %s in\n%s", want, out.String())
		}
	}
}

func TestRunReportsEveryProblem(t *testing.T) {
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"run", "--print-config", "--gateway", "a/b", "--broker", "udp://x", "--metrics", "0.0.0.0:1"}, &out, &errb)
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"gateway", "mqtt.broker", "metrics.listen"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s not reported: %v", want, err)
		}
	}
}
