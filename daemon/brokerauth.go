package daemon

import (
	"bufio"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/packets"
	"golang.org/x/crypto/bcrypt"

	"github.com/linnet-edge/linnet/daemon/ota"
)

// The embedded broker's door. On a loopback address it lets anyone in
// (auth.AllowHook): only this machine can reach it. Anywhere else the
// daemon refuses to start without mqtt.embedded_password_file, and then
// brokerAuth admits only the users of that file, by bcrypt hash, plus the
// daemon itself (a random password made at each start), and checks every
// topic:
//
//   - a device (any user of the file) publishes only on the readings
//     subscriptions' topics whose device level is its user name, and
//     subscribes only to its own prediction topic;
//   - mqtt.embedded_ota_user also publishes the OTA topics (fleet and this
//     gateway's) and reads the OTA results and the status (linnet push);
//   - the daemon reads and writes everything.

// internalUser is the daemon's own user name on its embedded broker; a
// password file cannot define it.
const internalUser = "linnet-daemon"

// brokerAuth is the mochi hook for authentication and topic ACLs.
type brokerAuth struct {
	mqtt.HookBase
	users    map[string][]byte // user -> bcrypt hash
	internal []byte            // the daemon's password
	otaUser  string
	features []sub    // the readings subscriptions: topic filter and device level
	predict  []string // each model's prediction topic, {device} left in
	otaW     []string // topics the OTA user may publish
	otaR     []string // filters the OTA user may subscribe to
}

// needsAuth reports whether the embedded broker listens beyond loopback.
func needsAuth(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return true
	}
	if host == "localhost" {
		return false
	}
	ip := net.ParseIP(host)
	return ip == nil || !ip.IsLoopback()
}

// readPasswords reads a password file: one "user:bcrypt-hash" a line
// (htpasswd -B writes them), blank lines and # comments ignored.
func readPasswords(path string) (map[string][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	users := map[string][]byte{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		if !ok || user == "" || strings.ContainsAny(user, "/+#") {
			return nil, fmt.Errorf("%s:%d: want user:bcrypt-hash, the user without / + or #", path, n)
		}
		if user == internalUser {
			return nil, fmt.Errorf("%s:%d: user %q is reserved for the daemon", path, n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return nil, fmt.Errorf("%s:%d: user %q: not a bcrypt hash (htpasswd -B, or mosquitto_passwd is not bcrypt): %v", path, n, user, err)
		}
		users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%s: no users", path)
	}
	return users, nil
}

// brokerAuthHook returns the hook for the embedded broker: brokerAuth with
// mqtt.embedded_password_file, else allow-all (loopback only: Validate
// refuses the rest).
func (s *Service) brokerAuthHook() (mqtt.Hook, error) {
	m := s.cfg.MQTT
	if m.EmbeddedPasswordFile == "" {
		return new(auth.AllowHook), nil
	}
	users, err := readPasswords(m.EmbeddedPasswordFile)
	if err != nil {
		return nil, fmt.Errorf("mqtt.embedded_password_file: %w", err)
	}
	pw := make([]byte, 24)
	if _, err := rand.Read(pw); err != nil {
		return nil, err
	}
	a := &brokerAuth{users: users, internal: []byte(hex.EncodeToString(pw)), otaUser: m.EmbeddedOTAUser,
		features: s.subs}
	for _, mdl := range s.models {
		a.predict = append(a.predict, s.topic(s.cfg.Topics.Prediction, mdl.name, ""))
		if o := s.cfg.OTA; o.Enabled {
			for _, t := range ota.Topics(o, mdl.name, func(tmpl string) string { return s.topic(tmpl, mdl.name, "") }) {
				a.otaW = append(a.otaW, t.Topic)
			}
		}
	}
	if o := s.cfg.OTA; o.Enabled {
		for _, t := range []string{o.ResultTopic, s.cfg.Topics.Status} {
			a.otaR = append(a.otaR, s.topic(t, "", ""), strings.ReplaceAll(t, "{gateway}", "+"))
		}
	}
	return a, nil
}

func (a *brokerAuth) ID() string { return "linnet-auth" }

func (a *brokerAuth) Provides(b byte) bool {
	return b == mqtt.OnConnectAuthenticate || b == mqtt.OnACLCheck
}

func (a *brokerAuth) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user, pass := string(pk.Connect.Username), pk.Connect.Password
	if user == internalUser {
		return subtle.ConstantTimeCompare(pass, a.internal) == 1
	}
	h, ok := a.users[user]
	return ok && bcrypt.CompareHashAndPassword(h, pass) == nil
}

func (a *brokerAuth) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	switch {
	case user == internalUser:
		return true
	case user == "":
		return false
	case user == a.otaUser && write && contains(a.otaW, topic):
		return true
	case user == a.otaUser && !write && contains(a.otaR, topic):
		return true
	case !write:
		for _, p := range a.predict {
			if topic == strings.ReplaceAll(p, "{device}", user) {
				return true
			}
		}
		return false
	}
	for i := range a.features {
		f := &a.features[i]
		if dev, ok := topicDevice(f.match, f.level, topic); ok && dev == user {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// topicDevice matches topic against filter (+ and # wildcards) and returns
// its level-th level (the device).
func topicDevice(filter string, level int, topic string) (string, bool) {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			if level >= len(ts) {
				return "", false
			}
			return ts[level], true
		case i >= len(ts):
			return "", false
		case f != "+" && f != ts[i]:
			return "", false
		}
	}
	if len(fs) != len(ts) || level >= len(ts) {
		return "", false
	}
	return ts[level], true
}

// brokerAuthed returns the embedded broker's auth hook when it checks
// passwords: the daemon then logs in as internalUser.
func (s *Service) brokerAuthed() (*brokerAuth, bool) {
	if s.broker == nil {
		return nil, false
	}
	a, ok := s.broker.auth.(*brokerAuth)
	return a, ok
}
