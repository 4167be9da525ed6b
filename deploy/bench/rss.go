package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Memory is a process's resident set, from /proc/<pid>/status, in MiB.
type Memory struct {
	// PeakMiB is VmHWM: the peak resident set since start or since the last
	// reset (see [resetPeakRSS]).
	PeakMiB float64 `json:"peak_rss_mib"`
	// NowMiB is VmRSS when read.
	NowMiB float64 `json:"rss_mib"`
}

// readMemory reads VmHWM and VmRSS of pid.
func readMemory(pid int) (Memory, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	defer f.Close()
	var m Memory
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch key {
		case "VmHWM":
			m.PeakMiB = kibToMiB(val)
		case "VmRSS":
			m.NowMiB = kibToMiB(val)
		}
	}
	return m, sc.Err()
}

func kibToMiB(v string) float64 {
	kib, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
	if err != nil {
		return 0
	}
	return float64(int(kib/1024*10+0.5)) / 10
}

// resetPeakRSS resets VmHWM of pid to its current RSS (Linux 4.0+), so the
// next [readMemory] gives the peak of one phase. It reports whether it worked.
func resetPeakRSS(pid int) bool {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0) == nil
}
