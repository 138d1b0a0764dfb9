package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestModelsConfig: one [[models]] entry named "default" stands for the
// model, learning.mode and subscriptions keys; names are validated; more
// than one model, or another name, is refused as not yet served; no
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

	for _, bad := range []struct{ body, want string }{
		{"[[models]]\nname = \"Hvac\"\n", "models[0].name"},
		{"[[models]]\nname = \"-x\"\n", "models[0].name"},
		{"[[models]]\nname = \"default\"\nlearning = \"each\"\n", "models[0].learning"},
		{"[[models]]\nname = \"hvac\"\n", "not yet served"},
		{"[[models]]\nname = \"default\"\n[[models]]\nname = \"pump\"\n", "not yet served"},
		{"[[models]]\nname = \"default\"\n[[models]]\nname = \"default\"\n", "already"},
		{"[learning]\nmode = \"each\"\n", "learning.mode"},
	} {
		if _, err := load(bad.body); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: got %v, want an error about %s", bad.body, err, bad.want)
		}
	}
}
