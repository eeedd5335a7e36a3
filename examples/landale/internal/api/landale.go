package api

// Routes of Landale's Phoenix router that its own apps call, backed by the
// simulated world, the activity log and small in-memory stores:
//
//	GET  /api/activity/events          the dashboard's Activity Log, SEED
//	GET  /api/activity/events/bulk     phononmaser's chat poll (same answer)
//	POST /api/activity/events/bulk     {"events": [...]}: publish several events
//	GET  /api/activity/stats
//	GET  /api/twitch/status            SEED's stream info
//	GET  /api/oauth/status, POST /api/oauth/refresh, POST /api/oauth/upload
//	POST /api/contexts, GET /api/contexts, /api/contexts/search, /api/contexts/stats
//	GET  /api/community/members, POST /api/community/members/activity, GET /api/community/stats
//	GET|POST /api/community/pronunciation, GET /api/community/pronunciation/{username}
//	GET|POST /api/community/vocabulary, GET /api/community/vocabulary/search
//
// Answers use Landale's shapes: the ResponseBuilder envelope
// {"success": true, "data": ..., "meta": {"timestamp", "server_version"}}
// and {"success": false, "error": {"code", "message", "timestamp"[, "details"]}}
// where Landale's controllers use them, and their bare maps elsewhere.

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/pyre-go/pyre/examples/landale/internal/activity"
	"github.com/pyre-go/pyre/examples/landale/internal/events"
)

// ServerVersion is Landale's mix project version, reported in envelopes.
const ServerVersion = "0.1.0"

// MaxBulkEvents bounds the events of one POST /api/activity/events/bulk.
const MaxBulkEvents = 100

func (a *api) routeLandale(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/activity/events", a.activityEvents)
	mux.HandleFunc("GET /api/activity/events/bulk", a.activityEvents)
	mux.HandleFunc("POST /api/activity/events/bulk", a.activityBulk)
	mux.HandleFunc("GET /api/activity/stats", a.activityStats)
	mux.HandleFunc("GET /api/twitch/status", a.twitchStatus)
	mux.HandleFunc("GET /api/oauth/status", a.oauthStatus)
	mux.HandleFunc("POST /api/oauth/refresh", a.oauthRefresh)
	mux.HandleFunc("POST /api/oauth/upload", a.oauthUpload)
	mux.HandleFunc("POST /api/contexts", a.contextCreate)
	mux.HandleFunc("GET /api/contexts", a.contextList)
	mux.HandleFunc("GET /api/contexts/search", a.contextSearch)
	mux.HandleFunc("GET /api/contexts/stats", a.contextStats)
	mux.HandleFunc("GET /api/community/members", a.communityMembers)
	mux.HandleFunc("POST /api/community/members/activity", a.communityActivity)
	mux.HandleFunc("GET /api/community/stats", a.communityStats)
	mux.HandleFunc("GET /api/community/pronunciation", a.pronunciationList)
	mux.HandleFunc("POST /api/community/pronunciation", a.pronunciationCreate)
	mux.HandleFunc("GET /api/community/pronunciation/{username}", a.pronunciationGet)
	mux.HandleFunc("GET /api/community/vocabulary", a.vocabularyList)
	mux.HandleFunc("POST /api/community/vocabulary", a.vocabularyCreate)
	mux.HandleFunc("GET /api/community/vocabulary/search", a.vocabularySearch)
}

func (a *api) success(w http.ResponseWriter, status int, data any) {
	writeJSON(w, status, map[string]any{"success": true, "data": data,
		"meta": map[string]any{"timestamp": events.FormatTime(a.cfg.Now()), "server_version": ServerVersion}})
}

func (a *api) failure(w http.ResponseWriter, status int, code, message string, details any) {
	e := map[string]any{"code": code, "message": message, "timestamp": events.FormatTime(a.cfg.Now())}
	if details != nil {
		e["details"] = details
	}
	writeJSON(w, status, map[string]any{"success": false, "error": e})
}

// intParam reads an optional integer query parameter; ok is false (and
// Landale's invalid_parameters answer written) when it is not an integer.
func (a *api) intParam(w http.ResponseWriter, r *http.Request, name string, def int) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, true
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		a.failure(w, http.StatusBadRequest, "invalid_parameters", "Invalid parameter format", nil)
		return 0, false
	}
	return n, true
}

func (a *api) activityEvents(w http.ResponseWriter, r *http.Request) {
	limit, ok := a.intParam(w, r, "limit", 0)
	if !ok {
		return
	}
	hours, ok := a.intParam(w, r, "hours", 0)
	if !ok {
		return
	}
	q := activity.Query{Limit: min(max(limit, 0), 1000), EventType: r.URL.Query().Get("event_type"),
		UserID: r.URL.Query().Get("user_id")}
	if limit < 0 {
		q.Limit = 0
	}
	if hours > 0 {
		q.Since = a.cfg.Now().Add(-time.Duration(hours) * time.Hour)
	}
	list := []activity.Entry{}
	if a.cfg.Activity != nil {
		list = a.cfg.Activity.List(q)
	}
	a.success(w, http.StatusOK, map[string]any{"events": list, "count": len(list)})
}

func (a *api) activityBulk(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Events []map[string]any `json:"events"`
	}
	if !a.readObject(w, r, &req) {
		return
	}
	if len(req.Events) == 0 || len(req.Events) > MaxBulkEvents {
		a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Request validation failed",
			map[string]any{"fields": map[string]any{"events": "must hold 1 to " + strconv.Itoa(MaxBulkEvents) + " events"}})
		return
	}
	now := a.cfg.Now()
	done := make([]events.Event, 0, len(req.Events))
	for i, raw := range req.Events {
		e, err := events.Complete(events.Event(raw), now)
		if err != nil {
			details := map[string]any{"index": i, "error": err.Error()}
			var ve *events.ValidationError
			if errors.As(err, &ve) {
				details["field"], details["error"] = ve.Field, ve.Field+" "+ve.Message
			}
			a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Request validation failed", details)
			return
		}
		done = append(done, e)
	}
	ids := make([]any, 0, len(done))
	for _, e := range done {
		if err := a.cfg.Bus.PublishEvent(r.Context(), e); err != nil {
			a.failure(w, http.StatusServiceUnavailable, "service_unavailable", err.Error(), map[string]any{"published": ids})
			return
		}
		ids = append(ids, e["id"])
	}
	a.success(w, http.StatusOK, map[string]any{"published": len(ids), "ids": ids})
}

func (a *api) activityStats(w http.ResponseWriter, r *http.Request) {
	hours, ok := a.intParam(w, r, "hours", 24)
	if !ok {
		return
	}
	since := a.cfg.Now().Add(-time.Duration(hours) * time.Hour)
	stats := map[string]any{"total_events": 0, "unique_users": 0, "chat_messages": 0, "follows": 0, "subscriptions": 0, "cheers": 0}
	active := []map[string]any{}
	if a.cfg.Activity != nil {
		stats, active = a.cfg.Activity.Stats(since), a.cfg.Activity.MostActive(since, 10)
	}
	a.success(w, http.StatusOK, map[string]any{"stats": stats, "most_active_users": active, "time_window_hours": hours})
}

// twitchStatus is TwitchController.status: {"success": true, "data":
// <status>} or 503 {"success": false, "error": <reason>}.
func (a *api) twitchStatus(w http.ResponseWriter, r *http.Request) {
	if a.cfg.Twitch == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"success": false, "error": "Service not configured"})
		return
	}
	st, err := a.cfg.Twitch(r.Context())
	if err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"success": false, "error": err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"success": true, "data": st})
}

// The example holds no Twitch credentials: OAuth answers as Landale does
// with no token stored.
func (a *api) oauthStatus(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"connected": false})
}

func (a *api) oauthRefresh(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusInternalServerError, map[string]any{"success": false, "error": ":not_found"})
}

func (a *api) oauthUpload(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	_, access := req["access_token"]
	_, refresh := req["refresh_token"]
	if !access || !refresh {
		writeJSON(w, http.StatusBadRequest, map[string]any{"success": false,
			"error": "Missing required fields: access_token and refresh_token"})
		return
	}
	// Landale's answer when its token store refuses the tokens: the
	// simulated server never stores credentials.
	writeJSON(w, http.StatusBadRequest, map[string]any{"success": false, "error": "Failed to store tokens"})
}

func (a *api) contextCreate(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	c, errs := a.store.addContext(req)
	if errs != nil {
		a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Context validation failed", map[string]any{"errors": errs})
		return
	}
	a.success(w, http.StatusCreated, map[string]any{"started": c.Started, "ended": c.Ended, "session": c.Session,
		"duration": c.Duration, "sentiment": c.Sentiment, "topics": c.Topics})
}

func (a *api) contextList(w http.ResponseWriter, r *http.Request) {
	limit, ok := a.intParam(w, r, "limit", 50)
	if !ok {
		return
	}
	list := a.store.contexts(min(max(limit, 1), 500), r.URL.Query().Get("session"), "")
	a.success(w, http.StatusOK, map[string]any{"contexts": list})
}

func (a *api) contextSearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" {
		a.failure(w, http.StatusBadRequest, "missing_parameter", "Search query 'q' parameter is required", nil)
		return
	}
	limit, ok := a.intParam(w, r, "limit", 25)
	if !ok {
		return
	}
	list := a.store.contexts(min(max(limit, 1), 100), r.URL.Query().Get("session"), q)
	a.success(w, http.StatusOK, map[string]any{"contexts": list})
}

// contextStats keeps Landale's odd shape: {"status": "success", "data": ...}.
func (a *api) contextStats(w http.ResponseWriter, r *http.Request) {
	hours, ok := a.intParam(w, r, "hours", 24)
	if !ok {
		return
	}
	overall, sentiment, topics := a.store.contextStats(a.cfg.Now().Add(-time.Duration(hours) * time.Hour))
	writeJSON(w, http.StatusOK, map[string]any{"status": "success", "data": map[string]any{
		"overall": overall, "sentiment_distribution": sentiment, "popular_topics": topics, "time_window_hours": hours}})
}

func (a *api) communityMembers(w http.ResponseWriter, r *http.Request) {
	limit, ok := a.intParam(w, r, "limit", 50)
	if !ok {
		return
	}
	list := a.store.members(min(max(limit, 1), 500))
	a.success(w, http.StatusOK, map[string]any{"data": list, "count": len(list)})
}

func (a *api) communityActivity(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	username, _ := req["username"].(string)
	if _, present := req["username"]; !present {
		a.failure(w, http.StatusBadRequest, "missing_parameter", "Username is required", nil)
		return
	}
	display, _ := req["display_name"].(string)
	m, errs := a.store.touchMember(username, display, a.cfg.Now())
	if errs != nil {
		a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Member validation failed", map[string]any{"errors": errs})
		return
	}
	status := http.StatusOK
	if m.MessageCount == 1 {
		status = http.StatusCreated
	}
	a.success(w, status, map[string]any{"username": m.Username, "display_name": m.DisplayName,
		"message_count": m.MessageCount, "last_seen": m.LastSeen})
}

func (a *api) communityStats(w http.ResponseWriter, _ *http.Request) {
	a.success(w, http.StatusOK, map[string]any{"data": a.store.communityStats(a.cfg.Now())})
}

func (a *api) pronunciationList(w http.ResponseWriter, _ *http.Request) {
	a.success(w, http.StatusOK, map[string]any{"data": a.store.pronunciations()})
}

func (a *api) pronunciationCreate(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	p, errs := a.store.addPronunciation(req, a.cfg.Now())
	if errs != nil {
		a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Pronunciation validation failed", map[string]any{"errors": errs})
		return
	}
	a.success(w, http.StatusCreated, map[string]any{"username": p.Username, "phonetic": p.Phonetic,
		"confidence": p.Confidence, "created_by": p.CreatedBy})
}

func (a *api) pronunciationGet(w http.ResponseWriter, r *http.Request) {
	username := r.PathValue("username")
	p, ok := a.store.pronunciation(username)
	if !ok {
		a.failure(w, http.StatusNotFound, "not_found", "Pronunciation not found", nil)
		return
	}
	a.success(w, http.StatusOK, map[string]any{"username": username, "phonetic": p.Phonetic})
}

func (a *api) vocabularyList(w http.ResponseWriter, r *http.Request) {
	limit, ok := a.intParam(w, r, "limit", 50)
	if !ok {
		return
	}
	a.success(w, http.StatusOK, map[string]any{"data": a.store.vocabulary(r.URL.Query().Get("category"), "", max(limit, 1))})
}

func (a *api) vocabularyCreate(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !a.readObject(w, r, &req) {
		return
	}
	v, errs := a.store.addVocabulary(req, a.cfg.Now())
	if errs != nil {
		a.failure(w, http.StatusUnprocessableEntity, "validation_failed", "Vocabulary validation failed", map[string]any{"errors": errs})
		return
	}
	a.success(w, http.StatusCreated, v)
}

func (a *api) vocabularySearch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if _, present := r.URL.Query()["q"]; !present {
		a.failure(w, http.StatusBadRequest, "missing_parameter", "Search query 'q' is required", nil)
		return
	}
	limit, ok := a.intParam(w, r, "limit", 25)
	if !ok {
		return
	}
	a.success(w, http.StatusOK, map[string]any{"data": a.store.vocabulary("", strings.ToLower(q), max(limit, 1)), "query": q})
}
