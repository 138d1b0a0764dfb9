package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"golang.org/x/crypto/bcrypt"

	"github.com/linnet-edge/linnet/daemon/wire"
)

// TestEmbeddedBrokerOpenDoor: the embedded broker on a non-loopback
// address without a password file is refused (config and start-up).
func TestEmbeddedBrokerOpenDoor(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:1883", "[::]:1883", "192.168.1.5:1883", ":1883"} {
		c := Default()
		c.Gateway = "gw"
		c.MQTT.Embedded = listen
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), "embedded_password_file") {
			t.Errorf("%s without auth: %v", listen, err)
		}
		if _, err := New(c, testLogger(t)); err == nil {
			t.Errorf("%s without auth: the service was built", listen)
		}
	}
	c := Default()
	c.Gateway = "gw"
	c.MQTT.Embedded = "127.0.0.1:1883"
	if err := c.Validate(); err != nil {
		t.Errorf("loopback: %v", err)
	}
}

// passwordFile writes user:bcrypt lines for users (password = user + "-pw").
func passwordFile(t *testing.T, users ...string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# linnet devices\n")
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	p := filepath.Join(t.TempDir(), "passwd")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func login(user, pw string) func(*paho.ClientOptions) {
	return func(o *paho.ClientOptions) { o.SetUsername(user).SetPassword(pw) }
}

// TestEmbeddedBrokerACL: with a password file the embedded broker admits
// only its users; a device publishes readings only on its own topic and
// reads only its own predictions; OTA topics are writable only by the OTA
// user.
func TestEmbeddedBrokerACL(t *testing.T) {
	cfg := testConfig(t, "")
	cfg.MQTT.Broker = ""
	cfg.MQTT.Embedded = "127.0.0.1:0"
	cfg.MQTT.EmbeddedPasswordFile = passwordFile(t, "kitchen", "hall", "ops")
	cfg.MQTT.EmbeddedOTAUser = "ops"
	d := startDaemon(t, cfg, newFake())
	url := d.s.BrokerURL()

	// No password, a wrong one: refused.
	for _, o := range []func(*paho.ClientOptions){login("", ""), login("kitchen", "hall-pw"), login(internalUser, "guess")} {
		opts := paho.NewClientOptions().AddBroker(url).SetClientID("intruder").SetConnectTimeout(2 * time.Second)
		o(opts)
		c := paho.NewClient(opts)
		if tok := c.Connect(); tok.WaitTimeout(patience) && tok.Error() == nil {
			c.Disconnect(0)
			t.Errorf("connected as %q", opts.Username)
		}
	}

	kitchen := testClient(t, url, "kitchen", true, login("kitchen", "kitchen-pw"))
	// Another device's predictions: the subscription is refused.
	tok := kitchen.Subscribe("linnet/hall/prediction", 1, func(paho.Client, paho.Message) {})
	if !tok.WaitTimeout(patience) {
		t.Fatal("subscribe timed out")
	}
	if q := tok.(*paho.SubscribeToken).Result()["linnet/hall/prediction"]; q != 0x80 {
		t.Errorf("kitchen subscribing to the hall's predictions: granted QoS %d, want 0x80 (refused)", q)
	}
	own := collect(t, kitchen, "linnet/kitchen/prediction")
	// Readings as another device, a model, a status: each publish is
	// refused and its sender disconnected (MQTT 3.1.1 has no negative
	// acknowledgement); nothing reaches the daemon.
	for i, forged := range []struct{ topic, payload string }{
		{"linnet/hall/features", `{"id":"forged","features":[1,2,3]}`},
		{"linnet/ota/model", "not a model"},
		{"linnet/gw-test/ota/model", "not a model"},
		{"linnet/gw-test/status", `{"state":"offline"}`},
	} {
		opts := paho.NewClientOptions().AddBroker(url).SetClientID(fmt.Sprint("forger", i)).SetUsername("kitchen").SetPassword("kitchen-pw").
			SetAutoReconnect(false)
		f := paho.NewClient(opts)
		if tok := f.Connect(); !tok.WaitTimeout(patience) || tok.Error() != nil {
			t.Fatalf("forger connect: %v", tok.Error())
		}
		f.Publish(forged.topic, 1, false, forged.payload).WaitTimeout(time.Second)
		for deadline := time.Now().Add(patience); f.IsConnectionOpen(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("publish on %s as kitchen: not refused", forged.topic)
			}
		}
		f.Disconnect(0)
	}
	publish(t, kitchen, "linnet/kitchen/features", []byte(`{"id":"mine","features":[1,2,3]}`))
	own.waitID(t, "mine")
	if n := d.s.processed.Load(); n != 1 {
		t.Errorf("the daemon processed %d messages, want 1 (the forged one must not reach it)", n)
	}
	if n := gatheredLabel(t, d, "linnet_ota_results_total", "reason", wire.OTAMalformed); n != 0 {
		t.Errorf("%v OTA decisions: a device's model reached the daemon", n)
	}
	// The OTA user may push: its file reaches the daemon (and is refused
	// as malformed there).
	ops := testClient(t, url, "ops", true, login("ops", "ops-pw"))
	results := collect(t, ops, "linnet/gw-test/ota/result")
	publish(t, ops, "linnet/ota/model", []byte("not a model either"))
	results.waitAll(t, 1)
	if n := gatheredLabel(t, d, "linnet_ota_results_total", "reason", wire.OTAMalformed); n != 1 {
		t.Errorf("the OTA user's file: %v decisions", n)
	}
}
