// Package api is the HTTP side of the Landale example: the control routes
// that other suites and the web pages drive the simulated world with, and
// the pages themselves.
//
//	POST /api/simulate   {"service": "obs"|..., "mode": "up"|"down"|"slow"|"failing"}
//	POST /api/events     one normalized event, published like a webhook-fed one
//	GET  /api/events     the most recent published events (?limit=N, default 50)
//	GET  /api/status     service modes and breaker states, demo, counters
//	GET  /api/overlays   the joined overlay:* and stream:overlays channels
//	POST /api/demo       {"running": true|false} starts or stops the generator
//	/api/activity/*, /api/twitch/status, /api/oauth/*, /api/contexts*,
//	/api/community/*     the routes Landale's own apps call (landale.go)
//	GET  /               redirects to /dashboard.html; other paths serve the pages
//
// Errors are JSON: {"error": "<text>", "field": "<field>"} with status 400
// (or 403/405/413/415).
//
// Requests that change state (every method but GET, HEAD and OPTIONS under
// /api/) must carry either no Origin header or an allowed one
// (Config.AllowedOrigins), and a JSON content
// type unless they have no body: a request from a foreign Origin is
// answered 403, a form or text/plain POST 415, before anything changes.
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/activity"
	"github.com/pyre-go/pyre/examples/landale/internal/channels"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// Demo is the part of the demo generator the API controls.
type Demo interface {
	Running() bool
	Rate() float64
	Start()
	Stop()
}

// Config is what the API serves.
type Config struct {
	Ctl      *sim.Controller
	Bus      *events.Bus
	Overlays *channels.Tracker
	// Breakers returns the breaker state of every service name ("closed",
	// "open", "half-open"); nil reports none.
	Breakers func() map[string]string
	// Stats returns extra counters for /api/status (connections...).
	Stats func() map[string]any
	// Demo is the generator; nil disables POST /api/demo.
	Demo Demo
	// Web holds the pages (overlay.html, dashboard.html, ...); nil serves none.
	Web fs.FS
	// AllowedOrigins are the browser origins (scheme://host[:port], exact
	// match) that may send state-changing requests, besides requests
	// without an Origin header (Landale's Python services). The origins of
	// the server's own pages must be listed too (app.Options.SelfOrigins):
	// the Host header is not trusted. nil allows only requests without
	// Origin.
	AllowedOrigins []string
	// Activity is the activity log behind /api/activity/*; nil serves an
	// empty log.
	Activity *activity.Log
	// Twitch returns the Twitch service status for /api/twitch/status; nil
	// answers 503.
	Twitch func(ctx context.Context) (map[string]any, error)
	// BodyReadTimeout bounds reading a request body: the HTTP server sets
	// no ReadTimeout (it would cut WebSockets), so the API sets a read
	// deadline per request. Defaults to BodyReadTimeout (10 s).
	BodyReadTimeout time.Duration
	// Now defaults to time.Now.
	Now func() time.Time
}

// BodyReadTimeout is the default of Config.BodyReadTimeout.
const BodyReadTimeout = 10 * time.Second

// MaxBodyBytes bounds request bodies (Landale's event size limit).
const MaxBodyBytes = events.MaxDataBytes + 1024

// New returns the API and page handler.
func New(cfg Config) http.Handler {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyReadTimeout <= 0 {
		cfg.BodyReadTimeout = BodyReadTimeout
	}
	a := &api{cfg: cfg, store: newStore()}
	mux := http.NewServeMux()
	a.routeLandale(mux)
	mux.HandleFunc("POST /api/simulate", a.simulate)
	mux.HandleFunc("POST /api/events", a.postEvent)
	mux.HandleFunc("GET /api/events", a.recentEvents)
	mux.HandleFunc("GET /api/status", a.status)
	mux.HandleFunc("GET /api/overlays", a.overlays)
	mux.HandleFunc("POST /api/demo", a.demo)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such route: "+r.Method+" "+r.URL.Path, "")
	})
	if cfg.Web != nil {
		files := http.FileServerFS(cfg.Web)
		mux.HandleFunc("/{$}", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "/dashboard.html", http.StatusFound)
		})
		mux.Handle("/", files)
	}
	return cors(guard(mux, cfg.AllowedOrigins))
}

type api struct {
	cfg   Config
	store *store
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg, field string) {
	body := map[string]any{"error": msg}
	if field != "" {
		body["field"] = field
	}
	writeJSON(w, status, body)
}

// readObject decodes a JSON object body; it writes the error itself and
// returns false on failure.
func (a *api) readObject(w http.ResponseWriter, r *http.Request, v any) bool {
	// A body trickled in slowly must not hold the connection forever. Not
	// every ResponseWriter supports deadlines (httptest.ResponseRecorder).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(a.cfg.BodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, "body is too large", "")
			return false
		}
		writeError(w, http.StatusBadRequest, "cannot read body: "+err.Error(), "")
		return false
	}
	if trimmed := bytes.TrimSpace(body); len(trimmed) == 0 || trimmed[0] != '{' {
		writeError(w, http.StatusBadRequest, "body must be a JSON object", "")
		return false
	}
	if err := json.Unmarshal(body, v); err != nil {
		writeError(w, http.StatusBadRequest, "body must be a JSON object: "+err.Error(), "")
		return false
	}
	return true
}

func (a *api) simulate(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	service, ok := req["service"].(string)
	if !ok || !slices.Contains(sim.Services, service) {
		writeError(w, http.StatusBadRequest, "service must be one of obs, twitch, rainwave, ironmon, nurvus, stream", "service")
		return
	}
	mode, ok := req["mode"].(string)
	if !ok || !sim.Mode(mode).Valid() {
		writeError(w, http.StatusBadRequest, "mode must be one of up, down, slow, failing", "mode")
		return
	}
	if err := a.cfg.Ctl.Set(service, sim.Mode(mode)); err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"service": service, "mode": mode, "services": a.cfg.Ctl.Snapshot()})
}

func (a *api) postEvent(w http.ResponseWriter, r *http.Request) {
	var raw map[string]any
	if !a.readObject(w, r, &raw) {
		return
	}
	e, err := events.Complete(events.Event(raw), a.cfg.Now())
	var ve *events.ValidationError
	if errors.As(err, &ve) {
		writeError(w, http.StatusBadRequest, ve.Field+" "+ve.Message, ve.Field)
		return
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error(), "")
		return
	}
	if err := a.cfg.Bus.PublishEvent(r.Context(), e); err != nil {
		writeError(w, http.StatusServiceUnavailable, err.Error(), "")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"event": e})
}

func (a *api) recentEvents(w http.ResponseWriter, r *http.Request) {
	limit := 50
	if s := r.URL.Query().Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > events.RecentSize {
			writeError(w, http.StatusBadRequest, "limit must be an integer between 1 and 200", "limit")
			return
		}
		limit = n
	}
	list := a.cfg.Bus.Recent(limit)
	writeJSON(w, http.StatusOK, map[string]any{"events": list, "count": len(list)})
}

func (a *api) status(w http.ResponseWriter, _ *http.Request) {
	modes := a.cfg.Ctl.Snapshot()
	var breakers map[string]string
	if a.cfg.Breakers != nil {
		breakers = a.cfg.Breakers()
	}
	services := map[string]any{}
	for _, s := range sim.Services {
		b := "closed"
		if st, ok := breakers[s]; ok {
			b = st
		}
		services[s] = map[string]any{"mode": modes[s], "breaker": b}
	}
	body := map[string]any{
		"services":         services,
		"slow_delay_ms":    a.cfg.Ctl.SlowDelay().Milliseconds(),
		"events_published": a.cfg.Bus.Published(),
		"overlays":         len(a.cfg.Overlays.List()),
		"timestamp":        events.FormatTime(a.cfg.Now()),
	}
	if a.cfg.Demo != nil {
		body["demo"] = map[string]any{"running": a.cfg.Demo.Running(), "rate": a.cfg.Demo.Rate()}
	}
	if a.cfg.Stats != nil {
		for k, v := range a.cfg.Stats() {
			body[k] = v
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *api) overlays(w http.ResponseWriter, _ *http.Request) {
	list := a.cfg.Overlays.List()
	topics := []string{}
	for _, o := range list {
		if !slices.Contains(topics, o.Topic) {
			topics = append(topics, o.Topic)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"overlays": list, "topics": topics})
}

func (a *api) demo(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Demo == nil {
		writeError(w, http.StatusNotFound, "the demo generator is not available", "")
		return
	}
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	running, ok := req["running"].(bool)
	if !ok {
		writeError(w, http.StatusBadRequest, "running must be a boolean", "running")
		return
	}
	if running {
		a.cfg.Demo.Start()
	} else {
		a.cfg.Demo.Stop()
	}
	writeJSON(w, http.StatusOK, map[string]any{"running": a.cfg.Demo.Running(), "rate": a.cfg.Demo.Rate()})
}

// corsOrigins is Landale's HTTP CORS list (Corsica).
var corsOrigins = []string{
	"http://localhost:5173", "http://localhost:5174", "http://localhost:3000", "http://localhost:8008",
	"http://zelan:3000", "http://zelan:5173", "http://zelan:5174", "http://zelan:8008", "http://saya:8008",
	"https://saya.tailnet-dffc.ts.net:5173", "https://zelan.tailnet-dffc.ts.net:5173",
	"https://demi.tailnet-dffc.ts.net:5173", "https://alys.tailnet-dffc.ts.net:5173",
}

// cors answers Landale's CORS origins (x-correlation-id allowed).
func cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin != "" && slices.Contains(corsOrigins, origin) {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Add("Vary", "Origin")
			h.Set("Access-Control-Allow-Headers", "content-type, x-correlation-id")
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Expose-Headers", "x-correlation-id")
			if r.Method == http.MethodOptions {
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// guard refuses cross-site state changes: any method but GET, HEAD and
// OPTIONS on /api/ needs an Origin that is absent or in
// allowed (403 otherwise), and a JSON content type unless it has no body
// at all (415 otherwise: a form or text/plain POST is a "simple" request
// that browsers send cross-site without a CORS preflight).
func guard(next http.Handler, allowed []string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			next.ServeHTTP(w, r)
			return
		}
		if !strings.HasPrefix(r.URL.Path, "/api/") {
			next.ServeHTTP(w, r)
			return
		}
		if !originAllowed(r, allowed) {
			writeError(w, http.StatusForbidden, "origin not allowed: "+r.Header.Get("Origin"), "")
			return
		}
		// A POST without a body and without a Content-Type (the dashboard's
		// OAuth refresh button) carries nothing to misread; the Origin
		// check above is what keeps other sites out of it.
		bodyless := r.ContentLength == 0 && r.Header.Get("Content-Type") == ""
		if !bodyless && !isJSON(r.Header.Get("Content-Type")) {
			writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json", "")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isJSON reports whether a Content-Type header names application/json
// (parameters such as charset are allowed).
func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// originAllowed reports whether a state-changing request's Origin may act:
// no Origin header (non-browser clients) or one in allowed (exact,
// case-insensitive). The request's own Host is not trusted: under DNS
// rebinding a foreign page reaches this server under its own host name.
func originAllowed(r *http.Request, allowed []string) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	for _, a := range allowed {
		if strings.EqualFold(origin, a) {
			return true
		}
	}
	return false
}
