package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/daemon/ota"
)

// TestModelsConfig: one [[models]] entry named "default" stands for the
// model, learning.mode and subscriptions keys; names are validated; every
// other model needs its own subscriptions, no topic feeds two models; no
// [[models]] keeps today's single model.
func TestModelsConfig(t *testing.T) {
	load := func(body string) (*Config, error) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "linnet.toml")
		if err := os.WriteFile(path, []byte("data_dir = \"d\"\n[mqtt]\nbroker = \"tcp://127.0.0.1:1\"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path, nil)
		if err != nil {
			return nil, err
		}
		return c, c.Validate()
	}
	file := writeModel(t, t.TempDir(), 3)
	c, err := load(fmt.Sprintf(`
[[models]]
name = "default"
file = %q
learning = "per_device"
[[models.subscriptions]]
topic = "site/hvac/+/features"
format = "json"
`, file))
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != file || !c.Learning.PerDevice() || len(c.Subscriptions) != 1 || c.Subscriptions[0].Topic != "site/hvac/+/features" {
		t.Errorf("the default model's entry was not applied: model %q, learning %q, subscriptions %+v", c.Model, c.Learning.Mode, c.Subscriptions)
	}

	c, err = load("")
	if err != nil {
		t.Fatal(err)
	}
	if c.Model != "" || c.Learning.PerDevice() || !c.Learning.On() || len(c.Subscriptions) != 1 || c.Subscriptions[0].Topic != "linnet/+/features" {
		t.Errorf("without [[models]]: model %q, learning %q, subscriptions %+v", c.Model, c.Learning.Mode, c.Subscriptions)
	}

	// Two models: each its own file, learning and topics.
	c, err = load(fmt.Sprintf(`
[learning]
mode = "off"
[[models]]
name = "hvac"
file = %q
learning = "per_device"
[[models.subscriptions]]
topic = "site/hvac/+/features"
format = "json"
[[models]]
name = "pump"
[[models.subscriptions]]
topic = "site/pump/+/features"
format = "csv"
`, file))
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%+v", c.served); got != fmt.Sprintf("[{Name:hvac File:%s Learning:per_device Subscriptions:[{Topic:site/hvac/+/features Format:json Explain:0}]} {Name:pump File: Learning:off Subscriptions:[{Topic:site/pump/+/features Format:csv Explain:0}]}]", file) {
		t.Errorf("served %s", got)
	}
	c.Model = file // the top-level model is the "default" one, not listed
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "top-level model") {
		t.Errorf("a top-level model beside [[models]] without default: %v", err)
	}

	for _, bad := range []struct{ body, want string }{
		{"[[models]]\nname = \"Hvac\"\n", "models[0].name"},
		{"[[models]]\nname = \"-x\"\n", "models[0].name"},
		{"[[models]]\nname = \"default\"\nlearning = \"each\"\n", "models[0].learning"},
		{"[[models]]\nname = \"hvac\"\n", "no subscriptions"},
		{"[[models]]\nname = \"default\"\n[[models]]\nname = \"pump\"\n", "no subscriptions"},
		{"[[models]]\nname = \"default\"\n[[models]]\nname = \"pump\"\n[[models.subscriptions]]\ntopic = \"linnet/+/features\"\nformat = \"json\"\n", "feeds two models"},
		{"[[subscriptions]]\ntopic = \"a/+/f\"\nformat = \"json\"\n[[models]]\nname = \"pump\"\n[[models.subscriptions]]\ntopic = \"p/+/f\"\nformat = \"json\"\n", "top-level subscriptions"},
		{"[[models]]\nname = \"default\"\n[[models]]\nname = \"default\"\n", "already"},
		{"[learning]\nmode = \"each\"\n", "learning.mode"},
	} {
		if _, err := load(bad.body); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error about %s", bad.body, err, bad.want)
		}
	}
}

// TestModelsOTATopics: each model's OTA topics carry its name; the model
// named "default" keeps today's; a name whose topics meet another's or
// the results' is refused.
func TestModelsOTATopics(t *testing.T) {
	c := Default()
	c.Gateway = "gw"
	c.OTA.Enabled = true
	c.Models = []ModelConfig{{Name: "default"},
		{Name: "hvac", Subscriptions: []Subscription{{Topic: "site/hvac/+/f", Format: "json"}}}}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range c.served {
		for _, tp := range ota.Topics(c.OTA, m.Name, func(s string) string {
			return strings.NewReplacer("{gateway}", "gw", "{model}", m.Name).Replace(s)
		}) {
			got = append(got, tp.Topic)
		}
	}
	want := "linnet/ota/model linnet/ota/default linnet/gw/ota/model linnet/gw/ota/default linnet/ota/hvac linnet/gw/ota/hvac"
	if strings.Join(got, " ") != want {
		t.Errorf("OTA topics %q, want %q", strings.Join(got, " "), want)
	}
	for _, name := range []string{"result", "model"} {
		c.Models[1].Name = name
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "rename the model") {
			t.Errorf("a model named %q: %v", name, err)
		}
	}
}

// TestModelsTopicTemplates: {model} fills the prediction topic; the
// gateway's own topics (one for every model) refuse it.
func TestModelsTopicTemplates(t *testing.T) {
	c := Default()
	c.Gateway = "gw"
	c.Topics.Prediction = "site/{model}/{device}/prediction"
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s := &Service{cfg: c}
	if got := s.topic(c.Topics.Prediction, "hvac", "d1"); got != "site/hvac/d1/prediction" {
		t.Errorf("prediction topic %q", got)
	}
	c.Topics.Errors = "linnet/{gateway}/{model}/errors"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "topics.errors") {
		t.Errorf("{model} in topics.errors: %v", err)
	}
}
