package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pyre-go/pyre/examples/landale/internal/sim"
)

// envelope checks Landale's ResponseBuilder success envelope and returns data.
func envelope(t *testing.T, body map[string]any) map[string]any {
	t.Helper()
	require.Equal(t, true, body["success"], body)
	meta := body["meta"].(map[string]any)
	assert.Equal(t, "0.1.0", meta["server_version"])
	assert.Regexp(t, `^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`, meta["timestamp"])
	return body["data"].(map[string]any)
}

// errorEnvelope checks Landale's error envelope and returns its error map.
func errorEnvelope(t *testing.T, body map[string]any, code, message string) map[string]any {
	t.Helper()
	require.Equal(t, false, body["success"], body)
	e := body["error"].(map[string]any)
	assert.Equal(t, code, e["code"])
	assert.Equal(t, message, e["message"])
	assert.NotEmpty(t, e["timestamp"])
	return e
}

// The dashboard's Activity Log loads GET /api/activity/events?limit=50 and
// reads data.events; it answered 404 before.
func TestActivityEvents(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "GET", "/api/activity/events?limit=50", "")
	require.Equal(t, 200, code)
	data := envelope(t, body)
	assert.Equal(t, []any{}, data["events"])
	assert.Equal(t, float64(0), data["count"])

	for _, e := range []string{
		`{"type":"channel.follow","user_id":"1","user_login":"ana","user_name":"Ana"}`,
		`{"type":"system.health_check","status":"healthy"}`,
		`{"type":"channel.chat.message","user_id":"2","user_login":"bo","user_name":"Bo","message":"hi"}`,
	} {
		code, _, _ := f.do(t, "POST", "/api/events", e)
		require.Equal(t, 200, code)
	}
	code, body, _ = f.do(t, "GET", "/api/activity/events?limit=50", "")
	require.Equal(t, 200, code)
	data = envelope(t, body)
	list := data["events"].([]any)
	require.Len(t, list, 2, "health checks are not kept, as in Landale")
	first := list[0].(map[string]any)
	assert.Equal(t, "channel.chat.message", first["event_type"])
	assert.Equal(t, "bo", first["user_login"])
	assert.Equal(t, "2", first["user_id"])
	assert.Equal(t, "hi", first["data"].(map[string]any)["message"], "data is the whole normalized event")
	for _, k := range []string{"id", "timestamp", "user_name", "correlation_id"} {
		assert.NotEmpty(t, first[k], k)
	}

	_, body, _ = f.do(t, "GET", "/api/activity/events?event_type=channel.follow", "")
	assert.Len(t, envelope(t, body)["events"], 1)
	_, body, _ = f.do(t, "GET", "/api/activity/events?user_id=2", "")
	assert.Len(t, envelope(t, body)["events"], 1)
	_, body, _ = f.do(t, "GET", "/api/activity/events?limit=1", "")
	assert.Len(t, envelope(t, body)["events"], 1)
	// phononmaser's poll: the bulk route, event_type and hours.
	_, body, _ = f.do(t, "GET", "/api/activity/events/bulk?event_type=channel.chat.message&hours=1", "")
	assert.Len(t, envelope(t, body)["events"], 1)

	code, body, _ = f.do(t, "GET", "/api/activity/events?limit=many", "")
	assert.Equal(t, 400, code)
	errorEnvelope(t, body, "invalid_parameters", "Invalid parameter format")
}

func TestActivityBulkIngestAndStats(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "POST", "/api/activity/events/bulk", `{"events":[
		{"type":"channel.chat.message","user_id":"1","user_login":"ana","message":"one"},
		{"type":"channel.chat.message","user_id":"1","user_login":"ana","message":"two"},
		{"type":"channel.cheer","user_id":"2","user_login":"bo","bits":100}]}`)
	require.Equal(t, 200, code, body)
	data := envelope(t, body)
	assert.Equal(t, float64(3), data["published"])
	assert.Len(t, data["ids"], 3)
	f.mu.Lock()
	assert.Len(t, f.got["events"], 3, "each event is published on the bus")
	f.mu.Unlock()

	code, body, _ = f.do(t, "POST", "/api/activity/events/bulk", `{"events":[{"type":"channel.follow"},{"user_login":"x"}]}`)
	assert.Equal(t, 422, code)
	e := errorEnvelope(t, body, "validation_failed", "Request validation failed")
	assert.Equal(t, map[string]any{"index": float64(1), "field": "type", "error": "type is required"}, e["details"])
	code, _, _ = f.do(t, "POST", "/api/activity/events/bulk", `{"events":[]}`)
	assert.Equal(t, 422, code)
	f.mu.Lock()
	assert.Len(t, f.got["events"], 3, "a refused batch publishes nothing")
	f.mu.Unlock()

	code, body, _ = f.do(t, "GET", "/api/activity/stats", "")
	require.Equal(t, 200, code)
	data = envelope(t, body)
	assert.Equal(t, float64(24), data["time_window_hours"])
	assert.Equal(t, map[string]any{"total_events": float64(3), "unique_users": float64(2), "chat_messages": float64(2),
		"follows": float64(0), "subscriptions": float64(0), "cheers": float64(1)}, data["stats"])
	assert.Equal(t, []any{map[string]any{"user_login": "ana", "message_count": float64(2)}}, data["most_active_users"])
	code, _, _ = f.do(t, "GET", "/api/activity/stats?hours=x", "")
	assert.Equal(t, 400, code)
}

func TestTwitchStatus(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "GET", "/api/twitch/status", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"success": true, "data": map[string]any{"connected": true}}, body)
	require.NoError(t, f.ctl.Set(sim.Twitch, sim.Down))
	code, body, _ = f.do(t, "GET", "/api/twitch/status", "")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, false, body["success"])
	assert.NotEmpty(t, body["error"])
}

// No Twitch credentials exist in the example: OAuth answers as Landale
// does with no token stored.
func TestOAuthWithoutToken(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "GET", "/api/oauth/status", "")
	assert.Equal(t, 200, code)
	assert.Equal(t, map[string]any{"connected": false}, body)
	code, body, _ = f.do(t, "POST", "/api/oauth/refresh", "{}")
	assert.Equal(t, 500, code)
	assert.Equal(t, map[string]any{"success": false, "error": ":not_found"}, body)
	// The dashboard's refresh button POSTs without a body or Content-Type.
	req, err := http.NewRequest("POST", f.srv.URL+"/api/oauth/refresh", nil)
	require.NoError(t, err)
	req.Header.Set("Origin", "http://localhost:5173")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 500, resp.StatusCode, "a bodyless POST from an allowed origin reaches the handler")
	req.Header.Set("Origin", "http://evil.example")
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 403, resp.StatusCode, "but not from another site")
	code, body, _ = f.do(t, "POST", "/api/oauth/upload", `{"access_token":"a"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, "Missing required fields: access_token and refresh_token", body["error"])
	code, body, _ = f.do(t, "POST", "/api/oauth/upload", `{"access_token":"a","refresh_token":"r"}`)
	assert.Equal(t, 400, code)
	assert.Equal(t, map[string]any{"success": false, "error": "Failed to store tokens"}, body)
	code, _, _ = f.do(t, "POST", "/api/oauth/upload", `{"access_token":"a","refresh_token":"r"}`, "Content-Type", "text/plain")
	assert.Equal(t, 415, code)
}

func TestContexts(t *testing.T) {
	f := newFixture(t)
	ctx := `{"started":"2025-08-25T16:00:00Z","ended":"2025-08-25T16:02:00Z","session":"s1",
		"transcript":"we fixed the Phoenix socket","duration":120,"sentiment":"positive","topics":["go","phoenix"],
		"chat":{"message_count":3}}`
	code, body, _ := f.do(t, "POST", "/api/contexts", ctx)
	require.Equal(t, 201, code, body)
	assert.Equal(t, map[string]any{"started": "2025-08-25T16:00:00Z", "ended": "2025-08-25T16:02:00Z", "session": "s1",
		"duration": float64(120), "sentiment": "positive", "topics": []any{"go", "phoenix"}}, envelope(t, body))
	code, _, _ = f.do(t, "POST", "/api/contexts", strings.Replace(strings.Replace(ctx, `"s1"`, `"s2"`, 1), "Phoenix", "Redis", 1))
	require.Equal(t, 201, code)

	code, body, _ = f.do(t, "POST", "/api/contexts", `{"session":"s1","duration":"long","sentiment":"meh"}`)
	assert.Equal(t, 422, code)
	e := errorEnvelope(t, body, "validation_failed", "Context validation failed")
	assert.Equal(t, map[string]any{"errors": map[string]any{
		"started": []any{"can't be blank"}, "ended": []any{"can't be blank"}, "transcript": []any{"can't be blank"},
		"duration": []any{"is invalid"}, "sentiment": []any{"is invalid"}}}, e["details"])

	_, body, _ = f.do(t, "GET", "/api/contexts", "")
	list := envelope(t, body)["contexts"].([]any)
	require.Len(t, list, 2)
	assert.Equal(t, map[string]any{"message_count": float64(3)}, list[0].(map[string]any)["chat_summary"])
	_, body, _ = f.do(t, "GET", "/api/contexts?session=s2&limit=5", "")
	assert.Len(t, envelope(t, body)["contexts"], 1)
	_, body, _ = f.do(t, "GET", "/api/contexts/search?q=phoenix", "")
	found := envelope(t, body)["contexts"].([]any)
	require.Len(t, found, 1)
	assert.Equal(t, "s1", found[0].(map[string]any)["session"])
	code, body, _ = f.do(t, "GET", "/api/contexts/search", "")
	assert.Equal(t, 400, code)
	errorEnvelope(t, body, "missing_parameter", "Search query 'q' parameter is required")

	code, body, _ = f.do(t, "GET", "/api/contexts/stats?hours=100000", "")
	require.Equal(t, 200, code)
	assert.Equal(t, "success", body["status"])
	data := body["data"].(map[string]any)
	assert.Equal(t, map[string]any{"total_count": float64(2), "total_duration": float64(240), "unique_sessions": float64(2),
		"avg_duration": float64(120)}, data["overall"])
	assert.Equal(t, []any{map[string]any{"sentiment": "positive", "count": float64(2)}}, data["sentiment_distribution"])
	assert.Equal(t, map[string]any{"topic": "go", "count": float64(2)}, data["popular_topics"].([]any)[0])
	code, _, _ = f.do(t, "GET", "/api/contexts?limit=x", "")
	assert.Equal(t, 400, code)
}

func TestCommunity(t *testing.T) {
	f := newFixture(t)
	code, body, _ := f.do(t, "POST", "/api/community/members/activity", `{"username":"Ana","display_name":"Ana"}`)
	require.Equal(t, 201, code, "first message creates the member")
	assert.Equal(t, float64(1), envelope(t, body)["message_count"])
	code, body, _ = f.do(t, "POST", "/api/community/members/activity", `{"username":"ana"}`)
	require.Equal(t, 200, code)
	data := envelope(t, body)
	assert.Equal(t, float64(2), data["message_count"])
	assert.Equal(t, "Ana", data["display_name"])
	code, body, _ = f.do(t, "POST", "/api/community/members/activity", `{"display_name":"x"}`)
	assert.Equal(t, 400, code)
	errorEnvelope(t, body, "missing_parameter", "Username is required")

	_, body, _ = f.do(t, "GET", "/api/community/members", "")
	data = envelope(t, body)
	assert.Equal(t, float64(1), data["count"])
	assert.Equal(t, "ana", data["data"].([]any)[0].(map[string]any)["username"])
	_, body, _ = f.do(t, "GET", "/api/community/stats", "")
	assert.Equal(t, map[string]any{"active_members": float64(1), "total_messages": float64(2), "weekly_active": float64(1)},
		envelope(t, body)["data"])

	code, body, _ = f.do(t, "POST", "/api/community/pronunciation", `{"username":"ana","phonetic":"AH-nah","created_by":"seed"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, map[string]any{"username": "ana", "phonetic": "AH-nah", "confidence": float64(1), "created_by": "seed"}, envelope(t, body))
	code, body, _ = f.do(t, "POST", "/api/community/pronunciation", `{"username":"bo","confidence":3}`)
	assert.Equal(t, 422, code)
	e := errorEnvelope(t, body, "validation_failed", "Pronunciation validation failed")
	assert.Equal(t, map[string]any{"errors": map[string]any{"phonetic": []any{"can't be blank"},
		"confidence": []any{"must be between 0.0 and 1.0"}}}, e["details"])
	_, body, _ = f.do(t, "GET", "/api/community/pronunciation", "")
	assert.Len(t, envelope(t, body)["data"], 1)
	_, body, _ = f.do(t, "GET", "/api/community/pronunciation/Ana", "")
	assert.Equal(t, map[string]any{"username": "Ana", "phonetic": "AH-nah"}, envelope(t, body))
	code, body, _ = f.do(t, "GET", "/api/community/pronunciation/nobody", "")
	assert.Equal(t, 404, code)
	errorEnvelope(t, body, "not_found", "Pronunciation not found")

	code, body, _ = f.do(t, "POST", "/api/community/vocabulary", `{"phrase":"pog","category":"emote","definition":"excitement"}`)
	require.Equal(t, 201, code)
	assert.Equal(t, "pog", envelope(t, body)["phrase"])
	code, _, _ = f.do(t, "POST", "/api/community/vocabulary", `{"phrase":"x"}`)
	assert.Equal(t, 422, code)
	_, body, _ = f.do(t, "GET", "/api/community/vocabulary?category=emote", "")
	assert.Len(t, envelope(t, body)["data"], 1)
	_, body, _ = f.do(t, "GET", "/api/community/vocabulary?category=meme", "")
	assert.Len(t, envelope(t, body)["data"], 0)
	_, body, _ = f.do(t, "GET", "/api/community/vocabulary/search?q=EXCITE", "")
	data = envelope(t, body)
	assert.Len(t, data["data"], 1)
	assert.Equal(t, "EXCITE", data["query"])
	code, body, _ = f.do(t, "GET", "/api/community/vocabulary/search", "")
	assert.Equal(t, 400, code)
	errorEnvelope(t, body, "missing_parameter", "Search query 'q' is required")
}
