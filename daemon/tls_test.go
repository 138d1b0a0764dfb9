package daemon

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// writeCert makes a key pair and a certificate signed by parent (self
// signed when parent is nil) and writes name.pem and name.key into dir.
func writeCert(t *testing.T, dir, name string, tmpl *x509.Certificate, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	kb, _ := x509.MarshalECPrivateKey(key)
	write := func(file, typ string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, file), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".pem", "CERTIFICATE", der)
	write(name+".key", "EC PRIVATE KEY", kb)
	return cert, key
}

// Acceptance 6: TLS with a client certificate and a user name and password
// (read from a file) against a mosquitto that requires both.
func TestTLSClientCertAndPassword(t *testing.T) {
	mosquittoPath(t)
	passwd := clientTool(t, "mosquitto_passwd")
	dir := t.TempDir()
	now := time.Now()
	ca, caKey := writeCert(t, dir, "ca", &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "linnet test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}, nil, nil)
	writeCert(t, dir, "server", &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, caKey)
	writeCert(t, dir, "client", &x509.Certificate{
		SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "gw-tls"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, caKey)
	pwFile := filepath.Join(dir, "mosquitto.passwd")
	for _, u := range [][2]string{{"gateway", "s3cret pass"}, {"tester", "t"}} {
		args := []string{"-b", pwFile, u[0], u[1]}
		if u[0] == "gateway" {
			args = append([]string{"-c"}, args...)
		}
		if out, err := exec.Command(passwd, args...).CombinedOutput(); err != nil {
			t.Fatalf("mosquitto_passwd: %v %s", err, out)
		}
	}
	p := func(f string) string { return filepath.Join(dir, f) }
	m := startMosquitto(t, fmt.Sprintf(`allow_anonymous false
password_file %s
listener PORT 127.0.0.1
cafile %s
certfile %s
keyfile %s
require_certificate true
tls_version tlsv1.2
`, pwFile, p("ca.pem"), p("server.pem"), p("server.key")))
	url := fmt.Sprintf("ssl://127.0.0.1:%d", m.port)

	if err := os.WriteFile(p("gw.password"), []byte("s3cret pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, url)
	cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile = p("ca.pem"), p("client.pem"), p("client.key")
	cfg.MQTT.Username, cfg.MQTT.PasswordFile = "gateway", p("gw.password")
	fake := newFake()
	startDaemon(t, cfg, fake)

	cert, err := tls.LoadX509KeyPair(p("client.pem"), p("client.key"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	c := testClient(t, url, "tls-tester", true, func(o *paho.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}}).SetUsername("tester").SetPassword("t")
	})
	col := collect(t, c, "linnet/+/prediction")
	publish(t, c, "linnet/secure/features", []byte(`{"id":"t1","features":[1,2,3]}`))
	col.waitID(t, "t1")
	col.mu.Lock()
	got := col.byID["t1"][0]["prediction"].(float64)
	col.mu.Unlock()
	if want := float64(fake.Predict([]float32{1, 2, 3})); !near(got, want) {
		t.Errorf("prediction %v, want %v", got, want)
	}

	// A wrong password is refused: the daemon never becomes ready.
	bad := filepath.Join(dir, "bad.password")
	_ = os.WriteFile(bad, []byte("wrong"), 0o600)
	cfg2 := testConfig(t, url)
	cfg2.Gateway = "gw-bad"
	cfg2.MQTT.CAFile, cfg2.MQTT.CertFile, cfg2.MQTT.KeyFile = cfg.MQTT.CAFile, cfg.MQTT.CertFile, cfg.MQTT.KeyFile
	cfg2.MQTT.Username, cfg2.MQTT.PasswordFile = "gateway", bad
	s, err := New(cfg2, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	s.brokerURL = url
	o, err := s.clientOptions()
	if err != nil {
		t.Fatal(err)
	}
	o.SetConnectRetry(false).SetAutoReconnect(false)
	bc := paho.NewClient(o)
	if tok := bc.Connect(); !tok.WaitTimeout(patience) || tok.Error() == nil {
		t.Error("connected with a wrong password")
	}
}
