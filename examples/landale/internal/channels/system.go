package channels

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// serviceStatuses asks OBS, Twitch and IronMON for their status
// concurrently, each bounded by the service timeout: S = {"connected":
// true, "status": ...} or {"connected": false}. The database is simulated
// healthy.
func (c *Overlay) serviceStatuses(ctx context.Context) map[string]map[string]any {
	w := c.d.World
	type probe struct {
		key, service string
		fn           func(context.Context) (map[string]any, error)
	}
	probes := []probe{
		{"obs", sim.OBS, w.OBS.Status},
		{"twitch", sim.Twitch, w.Twitch.Status},
		{"ironmon_tcp", sim.Ironmon, w.Ironmon.Status},
	}
	out := make(map[string]map[string]any, 4)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := call(ctx, &c.base, p.service, p.fn)
			v := map[string]any{"connected": false}
			if err == nil {
				v = map[string]any{"connected": true, "status": st}
			}
			mu.Lock()
			out[p.key] = v
			mu.Unlock()
		}()
	}
	wg.Wait()
	out["database"] = map[string]any{"connected": true, "status": "healthy"}
	return out
}

// systemStatus is the system:status reply.
func (c *Overlay) systemStatus(ctx context.Context) map[string]any {
	services := c.serviceStatuses(ctx)
	healthy := 0
	for _, s := range services {
		if s["connected"] == true {
			healthy++
		}
	}
	status := "degraded"
	if healthy == len(services) {
		status = "healthy"
	}
	up := int64(time.Since(c.d.Started).Seconds())
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	svc := make(map[string]any, len(services))
	for k, v := range services {
		svc[k] = v
	}
	return map[string]any{
		"status":    status,
		"timestamp": time.Now().Unix(),
		"uptime":    map[string]any{"seconds": up, "formatted": formatUptime(up)},
		"memory": map[string]any{
			"total":     formatBytes(ms.Sys),
			"processes": formatBytes(ms.HeapAlloc + ms.StackInuse),
			"system":    formatBytes(ms.Sys - ms.HeapSys),
		},
		"services": svc,
		"summary": map[string]any{
			"healthy_services":  healthy,
			"total_services":    len(services),
			"health_percentage": int(math.Round(float64(healthy) / float64(len(services)) * 100)),
		},
	}
}

// systemServices is the system:services reply: each status with the
// service's details.
func (c *Overlay) systemServices(ctx context.Context) map[string]any {
	services := c.serviceStatuses(ctx)
	w := c.d.World
	if s := services["obs"]; s["connected"] == true {
		s["service_type"] = "obs_websocket"
		scenes, err := call(ctx, &c.base, sim.OBS, w.OBS.SceneList)
		if err == nil {
			list, _ := scenes["scenes"].([]any)
			s["scene_count"] = len(list)
			s["current_scene"] = scenes["currentProgramSceneName"]
		}
	}
	if s := services["twitch"]; s["connected"] == true {
		st, _ := s["status"].(map[string]any)
		s["subscriptions"] = st["subscriptions"]
	}
	if s := services["ironmon_tcp"]; s["connected"] == true {
		st, _ := s["status"].(map[string]any)
		port, conns := st["port"], st["connection_count"]
		if port == nil {
			port = 8080
		}
		if conns == nil {
			conns = 0
		}
		s["service_type"], s["port"], s["connection_count"] = "tcp_server", port, conns
	}
	services["database"]["seed_count"] = 42
	out := make(map[string]any, len(services))
	for k, v := range services {
		out[k] = v
	}
	return out
}

// formatUptime is Landale's "1d 2h 3m" | "2h 3m 4s" | "3m 4s" | "4s".
func formatUptime(s int64) string {
	d, h, m, sec := s/86400, s/3600%24, s/60%60, s%60
	switch {
	case d > 0:
		return fmt.Sprintf("%dd %dh %dm", d, h, m)
	case h > 0:
		return fmt.Sprintf("%dh %dm %ds", h, m, sec)
	case m > 0:
		return fmt.Sprintf("%dm %ds", m, sec)
	}
	return fmt.Sprintf("%ds", sec)
}

// formatBytes is "<n> B" | KB | MB | GB with at most two decimals.
func formatBytes(b uint64) string {
	units := []string{"B", "KB", "MB", "GB"}
	v := float64(b)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := strconv.FormatFloat(math.Round(v*100)/100, 'f', -1, 64)
	if !strings.Contains(s, ".") && i > 0 {
		s += ".0"
	}
	return s + " " + units[i]
}
