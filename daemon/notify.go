package daemon

import (
	"net"
	"os"
	"strconv"
	"time"
)

// notifier speaks systemd's sd_notify protocol (Type=notify): one datagram
// per state to the unix socket in $NOTIFY_SOCKET. Without the variable
// (not under systemd) every call is a no-op.
type notifier struct {
	addr string
}

func newNotifier() *notifier {
	return &notifier{addr: os.Getenv("NOTIFY_SOCKET")}
}

// send writes state (e.g. "READY=1") and reports whether systemd got it.
func (n *notifier) send(state string) bool {
	if n.addr == "" {
		return false
	}
	addr := n.addr
	if addr[0] == '@' { // abstract namespace
		addr = "\x00" + addr[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		return false
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err == nil
}

// watchdogInterval is how often to send WATCHDOG=1: half of WatchdogSec, as
// systemd recommends; 0 when the watchdog is off or meant for another pid.
func watchdogInterval() time.Duration {
	us, err := strconv.ParseInt(os.Getenv("WATCHDOG_USEC"), 10, 64)
	if err != nil || us <= 0 {
		return 0
	}
	if p := os.Getenv("WATCHDOG_PID"); p != "" && p != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(us) * time.Microsecond / 2
}
