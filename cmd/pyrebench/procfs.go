package main

import (
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Readers of /proc. They return -1 when a value cannot be read (another OS,
// a process that is gone), and callers print such values as "n/a".

const clkTck = 100 // USER_HZ on Linux

// procStatusKB returns a "<key>: N kB" line of /proc/<pid>/status (VmRSS,
// VmHWM), pid "self" allowed.
func procStatusKB(pid, key string) int64 {
	return keyKB("/proc/"+pid+"/status", key)
}

// meminfoKB returns a line of /proc/meminfo (Slab, MemAvailable) in kB.
func meminfoKB(key string) int64 { return keyKB("/proc/meminfo", key) }

func keyKB(path, key string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// procCPU returns the user and system CPU seconds of pid.
func procCPU(pid string) (user, sys float64) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return -1, -1
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return -1, -1
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return -1, -1
	}
	u, err1 := strconv.ParseFloat(f[11], 64)
	s, err2 := strconv.ParseFloat(f[12], 64)
	if err1 != nil || err2 != nil {
		return -1, -1
	}
	return u / clkTck, s / clkTck
}

// machineCPU returns busy and total jiffies summed over all CPUs.
func machineCPU() (busy, total float64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return -1, -1
	}
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := strings.Fields(string(line))
	if len(f) < 6 || f[0] != "cpu" {
		return -1, -1
	}
	var idle float64
	for i, s := range f[1:] {
		v, _ := strconv.ParseFloat(s, 64)
		total += v
		if i == 3 || i == 4 { // idle, iowait
			idle += v
		}
	}
	return total - idle, total
}

// sockstatTCPMemKB returns the kernel's TCP buffer memory (the "mem" pages
// of the TCP line of /proc/net/sockstat) in kB.
func sockstatTCPMemKB() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "TCP:"); ok {
			f := strings.Fields(rest)
			for i := 0; i+1 < len(f); i += 2 {
				if f[i] == "mem" {
					n, err := strconv.ParseInt(f[i+1], 10, 64)
					if err == nil {
						return n * int64(os.Getpagesize()) / 1024
					}
				}
			}
		}
	}
	return -1
}

// fdCount returns the number of open files of pid.
func fdCount(pid string) int64 {
	es, err := os.ReadDir("/proc/" + pid + "/fd")
	if err != nil {
		return -1
	}
	return int64(len(es))
}

// fdLimit returns the soft "Max open files" of pid.
func fdLimit(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/limits")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				if n, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return n
				}
			}
		}
	}
	return -1
}

// findProcess returns the PID of the first process whose command name
// (/proc/<pid>/comm) is name, "" when there is none.
func findProcess(name string) string {
	es, err := os.ReadDir("/proc")
	if err != nil {
		return ""
	}
	for _, e := range es {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/comm")
		if err == nil && strings.TrimSpace(string(b)) == name {
			return e.Name()
		}
	}
	return ""
}
