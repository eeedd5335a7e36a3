package benchserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// PublishHandler serves the bench contract's POST
// /publish?channel=&rate=&seconds=&size= for any server: it checks the
// parameters (400), runs one paced loop at a time under mu (409 while one
// runs), calls publish for every payload of the schedule (Pace) and
// answers the PaceResult as JSON. pyre's bench server and the centrifuge
// anchor both mount it, so both are driven by the same code.
func PublishHandler(mu *sync.Mutex, publish func(ctx context.Context, channel string, payload []byte) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST only", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()
		ch := q.Get("channel")
		rate, err1 := strconv.Atoi(q.Get("rate"))
		seconds, err2 := strconv.Atoi(q.Get("seconds"))
		size, err3 := strconv.Atoi(q.Get("size"))
		if ch == "" || err1 != nil || err2 != nil || err3 != nil ||
			rate < 1 || rate > MaxRate || seconds < 1 || seconds > MaxSeconds || size < MinSize || size > MaxSize {
			http.Error(w, fmt.Sprintf("need channel, 1<=rate<=%d, 1<=seconds<=%d, %d<=size<=%d",
				MaxRate, MaxSeconds, MinSize, MaxSize), http.StatusBadRequest)
			return
		}
		if !mu.TryLock() {
			http.Error(w, "a publish loop is already running", http.StatusConflict)
			return
		}
		defer mu.Unlock()
		res := Pace(r.Context(), rate, seconds, size, func(ctx context.Context, payload []byte) error {
			return publish(ctx, ch, payload)
		})
		res.Channel = ch
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(res)
	}
}

// MemStats returns the runtime figures of the bench contract's GET
// /debug/mem, after a GC when the request asks for it (?gc=1): heap and
// stack bytes, GC count, goroutines and the process's RSS (rss_kb, -1 when
// unknown). A server adds its own counters to the map.
func MemStats(r *http.Request) map[string]any {
	if r.URL.Query().Get("gc") == "1" {
		runtime.GC()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return map[string]any{
		"heap_alloc":  ms.HeapAlloc,
		"heap_inuse":  ms.HeapInuse,
		"heap_sys":    ms.HeapSys,
		"stack_inuse": ms.StackInuse,
		"sys":         ms.Sys,
		"num_gc":      ms.NumGC,
		"goroutines":  runtime.NumGoroutine(),
		"rss_kb":      selfRSSKB(),
	}
}

// selfRSSKB returns VmRSS of this process in KiB, -1 when unknown.
func selfRSSKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			n, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err == nil {
				return n
			}
		}
	}
	return -1
}
