package store

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder names the process holding a flock on path, from /proc/locks
// ("1: FLOCK ADVISORY WRITE <pid> <maj>:<min>:<inode> 0 EOF"), or "".
func lockHolder(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return ""
	}
	f, err := os.Open("/proc/locks")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" {
			continue
		}
		id := strings.Split(fs[5], ":")
		if len(id) != 3 || id[2] != strconv.FormatUint(uint64(st.Ino), 10) {
			continue
		}
		pid := fs[4]
		comm, _ := os.ReadFile("/proc/" + pid + "/comm")
		if name := strings.TrimSpace(string(comm)); name != "" {
			return fmt.Sprintf("process %s, %s", pid, name)
		}
		return "process " + pid
	}
	return ""
}
