package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux architecture Go supports).
const clockTicks = 100

// benchProcessName names the bench's own process (load generator, fake Novu,
// and NATS when embedded) in CPU reports.
const benchProcessName = "bench"

// CPUUse is the CPU time one process spent during a phase.
type CPUUse struct {
	// Seconds is user plus system CPU time.
	Seconds float64 `json:"cpu_seconds"`
	// Cores is Seconds over the phase's wall time.
	Cores float64 `json:"cores"`
	// MicrosPerMsg is Seconds per message handled in the phase, in µs.
	MicrosPerMsg float64 `json:"us_per_msg"`
}

// cpuTime reads the user plus system CPU time of pid (0: this process).
func cpuTime(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after it.
	s := string(b)
	end := strings.LastIndexByte(s, ')')
	if end < 0 {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	f := strings.Fields(s[end+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	// f[0] is field 3 (state): utime is field 14, stime field 15.
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("%s: unexpected format", path)
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, nil
}

// cpuMeter measures the CPU time of the bench and of every service process
// over one phase, which may be run in parts: [cpuMeter.pause] and
// [cpuMeter.resume] leave out what happens between two parts.
type cpuMeter struct {
	pids    map[string]int
	start   map[string]time.Duration
	began   time.Time
	running bool
	used    map[string]time.Duration
	wall    time.Duration
}

// startCPU snapshots the CPU time of this process and of pids.
func startCPU(pids map[string]int) *cpuMeter {
	m := &cpuMeter{pids: map[string]int{benchProcessName: 0}, used: map[string]time.Duration{}}
	for name, pid := range pids {
		m.pids[name] = pid
	}
	m.resume()
	return m
}

// resume starts measuring again after [cpuMeter.pause].
func (m *cpuMeter) resume() {
	if m.running {
		return
	}
	m.running, m.began, m.start = true, time.Now(), map[string]time.Duration{}
	for name, pid := range m.pids {
		if t, err := cpuTime(pid); err == nil {
			m.start[name] = t
		}
	}
}

// pause adds the CPU time used since start or resume to the phase's.
func (m *cpuMeter) pause() {
	if !m.running {
		return
	}
	m.running = false
	m.wall += time.Since(m.began)
	for name, pid := range m.pids {
		t, err := cpuTime(pid)
		start, ok := m.start[name]
		if err == nil && ok {
			m.used[name] += t - start
		}
	}
}

// stop returns the CPU each process used while measured, per message of msgs.
func (m *cpuMeter) stop(msgs int) map[string]CPUUse {
	m.pause()
	out := map[string]CPUUse{}
	var total time.Duration
	for name, d := range m.used {
		out[name] = cpuUse(d, m.wall, msgs)
		total += d
	}
	out["total"] = cpuUse(total, m.wall, msgs)
	return out
}

func cpuUse(d, wall time.Duration, msgs int) CPUUse {
	u := CPUUse{Seconds: round3(d.Seconds())}
	if wall > 0 {
		u.Cores = round3(d.Seconds() / wall.Seconds())
	}
	if msgs > 0 {
		u.MicrosPerMsg = round3(float64(d.Microseconds()) / float64(msgs))
	}
	return u
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }
