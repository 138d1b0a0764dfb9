// Command startuptime measures what a start of the service costs: the
// kernel self-test (`linnet selftest`, start to exit) and `linnet run`
// from exec to the retained "online" status on its embedded broker, with
// and without the self-test. It prints the median and the range of -n runs
// of each; scripts/startup-time.sh builds the binary and runs it.
//
//	go run ./scripts/startuptime -bin bin/linnet -n 10
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func main() {
	bin := flag.String("bin", "bin/linnet", "linnet binary")
	n := flag.Int("n", 10, "runs of each measurement")
	flag.Parse()
	if err := measure(*bin, *n); err != nil {
		fmt.Fprintln(os.Stderr, "startuptime:", err)
		os.Exit(1)
	}
}

func measure(bin string, n int) error {
	var st, online, skip []time.Duration
	for range n {
		d, err := selfTest(bin)
		if err != nil {
			return err
		}
		st = append(st, d)
	}
	for range n {
		d, err := startToOnline(bin, false)
		if err != nil {
			return err
		}
		online = append(online, d)
		if d, err = startToOnline(bin, true); err != nil {
			return err
		}
		skip = append(skip, d)
	}
	report("linnet selftest (exec to exit)", st)
	report("linnet run: exec to online", online)
	report("linnet run --skip-selftest: exec to online", skip)
	return nil
}

func report(what string, d []time.Duration) {
	slices.Sort(d)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	fmt.Printf("%-44s median %7.1f ms  (min %.1f, max %.1f, %d runs)\n", what, ms(d[len(d)/2]), ms(d[0]), ms(d[len(d)-1]), len(d))
}

func selfTest(bin string) (time.Duration, error) {
	t0 := time.Now()
	out, err := exec.Command(bin, "selftest").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s selftest: %v\n%s", bin, err, out)
	}
	return time.Since(t0), nil
}

// startToOnline starts the daemon on its embedded broker (on a port free a
// moment ago: this is a script, a lost race only fails the run) and polls
// the broker until the gateway's retained status says online.
func startToOnline(bin string, skipSelfTest bool) (time.Duration, error) {
	dir, err := os.MkdirTemp("", "startuptime")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr := l.Addr().String()
	l.Close()
	conf := filepath.Join(dir, "linnet.toml")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf("[mqtt]\nembedded_listen = %q\n", addr)), 0o644); err != nil {
		return 0, err
	}
	args := []string{"run", "--config", conf, "--data-dir", filepath.Join(dir, "data"), "--gateway", "st", "--metrics", ""}
	if skipSelfTest {
		args = append(args, "--skip-selftest")
	}
	cmd := exec.Command(bin, args...)
	logPath := filepath.Join(dir, "daemon.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	}()
	online := make(chan struct{}, 1)
	opts := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("startuptime").
		SetConnectTimeout(time.Second).SetAutoReconnect(false)
	for time.Since(t0) < 30*time.Second {
		c := mqtt.NewClient(opts)
		if tok := c.Connect(); !tok.WaitTimeout(time.Second) || tok.Error() != nil {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		c.Subscribe("linnet/st/status", 1, func(_ mqtt.Client, m mqtt.Message) {
			if strings.Contains(string(m.Payload()), `"state":"online"`) {
				select {
				case online <- struct{}{}:
				default:
				}
			}
		})
		select {
		case <-online:
			d := time.Since(t0)
			c.Disconnect(0)
			return d, nil
		case <-time.After(30*time.Second - time.Since(t0)):
		}
		c.Disconnect(0)
	}
	b, _ := os.ReadFile(logPath)
	return 0, errors.New("no online status within 30 s; daemon log:\n" + tail(string(b)))
}

func tail(s string) string {
	sc := bufio.NewScanner(strings.NewReader(s))
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}
