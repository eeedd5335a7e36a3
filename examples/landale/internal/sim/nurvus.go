package sim

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"
)

// NurvusErrorKind classifies a failed call to Nurvus, as Landale's
// ServicesChannel tells them apart.
type NurvusErrorKind int

const (
	// NurvusRefused: nothing listens on the port (econnrefused).
	NurvusRefused NurvusErrorKind = iota
	// NurvusHTTP: Nurvus answered with a non-2xx status.
	NurvusHTTP
	// NurvusNetwork: any other transport error (a timeout).
	NurvusNetwork
)

// NurvusError is the error of a call to the simulated Nurvus.
type NurvusError struct {
	Kind   NurvusErrorKind
	Status int   // HTTP status for NurvusHTTP (404 for an unknown process)
	Err    error // cause for NurvusNetwork
}

// Error describes the failure in Elixir's words.
func (e *NurvusError) Error() string {
	switch e.Kind {
	case NurvusRefused:
		return "%Req.TransportError{reason: :econnrefused}"
	case NurvusHTTP:
		return fmt.Sprintf("HTTP %d", e.Status)
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return "%Req.TransportError{reason: :timeout}"
	}
	return fmt.Sprintf("%%Req.TransportError{reason: %v}", e.Err)
}

// Unwrap returns the cause.
func (e *NurvusError) Unwrap() error { return e.Err }

// NurvusPort is the port Landale's Nurvus listens on.
const NurvusPort = 4001

type process struct {
	id, name string
	running  bool
	pid      int
	since    time.Time
	restarts int
}

// NurvusSim simulates the Nurvus process manager's HTTP API. In Down mode
// it refuses connections like a stopped process; in Failing mode it
// answers HTTP 500.
type NurvusSim struct {
	ctl  *Controller
	emit Emitter
	now  func() time.Time

	mu      sync.Mutex
	procs   map[string]*process
	nextPID int
}

// NewNurvus returns Nurvus managing phononmaser and seed, both running.
func NewNurvus(ctl *Controller, emit Emitter, now func() time.Time) *NurvusSim {
	if now == nil {
		now = time.Now
	}
	n := &NurvusSim{ctl: ctl, emit: emit, now: now, procs: map[string]*process{}, nextPID: 48120}
	for _, p := range []struct{ id, name string }{{"phononmaser", "Phononmaser"}, {"seed", "Seed"}} {
		n.nextPID += 7
		n.procs[p.id] = &process{id: p.id, name: p.name, running: true, pid: n.nextPID, since: now()}
	}
	return n
}

func (n *NurvusSim) gate(ctx context.Context) error {
	switch n.ctl.Mode(Nurvus) {
	case Down:
		return &NurvusError{Kind: NurvusRefused}
	case Failing:
		return &NurvusError{Kind: NurvusHTTP, Status: 500}
	}
	if err := n.ctl.Gate(ctx, Nurvus); err != nil {
		return &NurvusError{Kind: NurvusNetwork, Err: err}
	}
	return nil
}

func (n *NurvusSim) infoLocked(p *process) map[string]any {
	status := "stopped"
	var pid any
	uptime := 0
	if p.running {
		status, pid, uptime = "running", p.pid, int(n.now().Sub(p.since).Seconds())
	}
	return map[string]any{"id": p.id, "name": p.name, "status": status, "pid": pid,
		"uptime_seconds": uptime, "restart_count": p.restarts, "platform": "darwin"}
}

// Status answers GET /api/processes/<id>.
func (n *NurvusSim) Status(ctx context.Context, id string) (map[string]any, error) {
	if err := n.gate(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := n.procs[id]
	if p == nil {
		return nil, &NurvusError{Kind: NurvusHTTP, Status: 404}
	}
	return n.infoLocked(p), nil
}

// Processes returns the status of every managed process, by id.
func (n *NurvusSim) Processes(ctx context.Context) (map[string]map[string]any, error) {
	if err := n.gate(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	ids := make([]string, 0, len(n.procs))
	for id := range n.procs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	out := make(map[string]map[string]any, len(ids))
	for _, id := range ids {
		out[id] = n.infoLocked(n.procs[id])
	}
	return out, nil
}

// Action answers POST /api/processes/<id>/<action> for start, stop and
// restart. Starting a running process (or stopping a stopped one) succeeds
// without change, as Nurvus does.
func (n *NurvusSim) Action(ctx context.Context, id, action string) (map[string]any, error) {
	if err := n.gate(ctx); err != nil {
		return nil, err
	}
	n.mu.Lock()
	p := n.procs[id]
	if p == nil {
		n.mu.Unlock()
		return nil, &NurvusError{Kind: NurvusHTTP, Status: 404}
	}
	if action != "start" && action != "stop" && action != "restart" {
		n.mu.Unlock()
		return nil, &NurvusError{Kind: NurvusHTTP, Status: 400}
	}
	was := p.running
	switch action {
	case "start":
		if !p.running {
			n.startLocked(p)
		}
	case "stop":
		p.running = false
	case "restart":
		p.restarts++
		n.startLocked(p)
	}
	info := n.infoLocked(p)
	n.mu.Unlock()
	past := map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[action]
	if n.emit != nil {
		bg := context.WithoutCancel(ctx)
		if was && action != "start" {
			_, _ = n.emit.Publish(bg, "system.service_stopped", map[string]any{"service": id, "reason": action})
		}
		if action != "stop" && (!was || action == "restart") {
			_, _ = n.emit.Publish(bg, "system.service_started", map[string]any{"service": id, "version": "0.1.0", "pid": info["pid"]})
		}
	}
	return map[string]any{"success": true, "message": fmt.Sprintf("Process %s %s", id, past), "process": info}, nil
}

func (n *NurvusSim) startLocked(p *process) {
	n.nextPID += 7
	p.running, p.pid, p.since = true, n.nextPID, n.now()
}
