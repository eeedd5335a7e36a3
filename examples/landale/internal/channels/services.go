package channels

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/pyre-go/pyre/channel"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// ControllableServices are the Nurvus processes the dashboard may control.
var ControllableServices = []string{"phononmaser", "seed"}

func controllable(name string) bool {
	for _, s := range ControllableServices {
		if s == name {
			return true
		}
	}
	return false
}

// Services is Landale's ServicesChannel on "dashboard:services": a proxy to
// the Nurvus process manager. start, stop, restart and get_status never
// reply; their result arrives later as a command_result push (and, for the
// actions, a service_* broadcast to every client of the topic).
type Services struct {
	base

	ctx     context.Context // ends in Terminate: cancels running Nurvus calls
	cancel  context.CancelFunc
	wg      sync.WaitGroup // Nurvus call goroutines
	seq     uint64
	pending uint64 // the only task whose result is still wanted
}

// nurvusResult is the outcome of a Nurvus call, sent to the channel.
type nurvusResult struct {
	id       uint64
	service  string
	action   string // start, stop, restart or get_status
	response map[string]any
	err      error
}

// Join accepts the join; nothing is pushed.
func (c *Services) Join(_ context.Context, s *channel.Socket, _ channel.Payload) (any, error) {
	c.ctx, c.cancel = context.WithCancel(s.Context())
	s.Assign("subscribed", true)
	return nil, nil
}

// Terminate cancels the Nurvus calls in flight and waits for them.
func (c *Services) Terminate(context.Context, *channel.Socket, error) {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
}

// HandleIn follows Landale's clause order: controllable start, stop,
// restart, get_status; anything else carrying "service"; get_telemetry;
// ping; unknown.
func (c *Services) HandleIn(ctx context.Context, s *channel.Socket, msg *channel.Message) (channel.Reply, error) {
	p := msg.Payload.Map()
	if svc, has := p["service"]; has {
		name, isString := svc.(string)
		switch {
		case isString && controllable(name) && isNurvusCommand(msg.Event):
			c.startTask(s, name, msg.Event)
			return channel.NoReply, nil
		case isString && controllable(name):
			return errEnvelopeReply("unknown_command", "Unknown command: "+msg.Event), nil
		default:
			return errEnvelopeReply("invalid_service", fmt.Sprintf("Service %v is not controllable", elixirString(svc))), nil
		}
	}
	switch msg.Event {
	case "get_telemetry":
		_ = s.Push("telemetry_update", c.telemetry(ctx))
		return channel.NoReply, nil
	case "ping":
		return okEnvelope(pong()), nil
	}
	return errEnvelopeReply("unknown_command", "Unknown command: "+msg.Event), nil
}

func isNurvusCommand(event string) bool {
	return event == "start" || event == "stop" || event == "restart" || event == "get_status"
}

// elixirString renders a value the way string interpolation would.
func elixirString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case float64:
		if x == float64(int64(x)) {
			return fmt.Sprint(int64(x))
		}
	}
	return fmt.Sprint(v)
}

// startTask calls Nurvus on a goroutine owned by the channel; only the
// newest task's result is pushed (Landale remembers one pending task).
func (c *Services) startTask(s *channel.Socket, service, action string) {
	c.seq++
	id := c.seq
	c.pending = id
	ctx := c.ctx
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		r := nurvusResult{id: id, service: service, action: action}
		// No timeout: Landale's HTTP client waits for Nurvus.
		r.response, r.err = callTimeout(ctx, &c.base, sim.Nurvus, 0, func(ctx context.Context) (map[string]any, error) {
			if action == "get_status" {
				return c.d.World.Nurvus.Status(ctx, service)
			}
			return c.d.World.Nurvus.Action(ctx, service, action)
		})
		s.Send(r)
	}()
}

// HandleInfo pushes the results of Nurvus calls.
func (c *Services) HandleInfo(ctx context.Context, s *channel.Socket, info any) error {
	r, ok := info.(nurvusResult)
	if !ok {
		return c.Base.HandleInfo(ctx, s, info)
	}
	if r.id != c.pending {
		return nil // superseded by a newer command: Landale ignores it too
	}
	if r.err != nil {
		_ = c.PushError("command_result", "nurvus_error", nurvusMessage(r.action, r.err))
		return nil
	}
	if r.action != "get_status" {
		ing := map[string]string{"start": "starting", "stop": "stopping", "restart": "restarting"}[r.action]
		err := s.Broadcast(ctx, "service_"+ing, map[string]any{
			"service": r.service, "action": ing, "response": r.response, "timestamp": time.Now().Unix(),
		})
		if err != nil {
			return err
		}
	}
	return push(s, "command_result", envelope(r.response))
}

// nurvusMessage is Landale's text for a failed Nurvus call.
func nurvusMessage(action string, err error) string {
	var ne *sim.NurvusError
	status := action == "get_status"
	if !errors.As(err, &ne) {
		return "Network error: " + err.Error()
	}
	switch ne.Kind {
	case sim.NurvusRefused:
		if status {
			return "Nurvus not running"
		}
		return fmt.Sprintf("Nurvus not running on port %d", sim.NurvusPort)
	case sim.NurvusHTTP:
		switch {
		case ne.Status == 404 && status:
			return "Process not found"
		case ne.Status == 404:
			return "Process not found in Nurvus"
		case status:
			return fmt.Sprintf("HTTP %d", ne.Status)
		}
		return fmt.Sprintf("Nurvus returned HTTP %d", ne.Status)
	}
	return "Network error: " + ne.Error()
}

// telemetry builds telemetry_update: the status of OBS, Twitch and the two
// Nurvus processes (gathered concurrently, each bounded by the service
// timeout), system status and transcription analytics.
func (c *Services) telemetry(ctx context.Context) map[string]any {
	d := c.d
	results := make(chan telemetryResult, 4)
	var wg sync.WaitGroup
	gather := func(name, service string, fn func(ctx context.Context) (map[string]any, error)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := call(ctx, &c.base, service, fn)
			results <- telemetryEntry(name, st, err)
		}()
	}
	w := d.World
	gather("obs", sim.OBS, w.OBS.Status)
	gather("twitch", sim.Twitch, w.Twitch.Status)
	for _, p := range ControllableServices {
		gather(p, sim.Nurvus, func(ctx context.Context) (map[string]any, error) {
			st, err := w.Nurvus.Status(ctx, p)
			if err == nil && st["status"] != "running" {
				return nil, errNotRunning
			}
			return st, err
		})
	}
	wg.Wait()
	close(results)
	services := map[string]any{}
	connected, unreachable := 0, 0
	for e := range results {
		services[e.name] = e.val
		if e.val["connected"] == true {
			connected++
		}
		if e.bad {
			unreachable++
		}
	}
	status := "unhealthy"
	switch {
	case connected == 4:
		status = "healthy"
	case connected >= 2 || unreachable >= 3:
		status = "degraded"
	}
	now := time.Now()
	return map[string]any{
		"timestamp": now.UnixMilli(),
		"services":  services,
		"system": map[string]any{
			"uptime":      int64(now.Sub(d.Started).Seconds()),
			"version":     ServerVersion,
			"environment": d.Environment,
			"status":      status,
		},
		"overlays":      []any{},
		"transcription": d.Transcripts.Analytics(now),
	}
}

var errNotRunning = errors.New("service not running")

// telemetryResult is one service entry of telemetry_update.
type telemetryResult struct {
	name string
	val  map[string]any
	bad  bool // unreachable or timed out
}

func telemetryEntry(name string, st map[string]any, err error) (e telemetryResult) {
	e.name = name
	if err == nil {
		v := map[string]any{}
		for k, x := range st {
			v[k] = x
		}
		v["connected"] = true
		v["phoenix_reachable"] = true
		e.val = v
		return e
	}
	var ne *sim.NurvusError
	msg, reachable := "Service unreachable", false
	switch {
	case errors.Is(err, errNotRunning):
		msg, reachable = "Service not running", true
	case errors.Is(err, ErrServiceTimeout):
		msg, e.bad = "Service status timeout", true
	case errors.As(err, &ne) && ne.Kind == sim.NurvusHTTP:
		msg, reachable = "Invalid response from service", true
	case errors.Is(err, sim.ErrFailing):
		msg, reachable = "Invalid response from service", true
	default:
		e.bad = true
	}
	e.val = map[string]any{"connected": false, "error": msg, "phoenix_reachable": reachable}
	return e
}
