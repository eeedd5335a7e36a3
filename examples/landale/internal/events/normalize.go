package events

import (
	"strings"
	"time"
)

// fieldKind says how a source value becomes a normalized value.
type fieldKind uint8

const (
	plain    fieldKind = iota // copied as is
	datetime                  // ISO 8601 parsed and re-emitted, invalid → null
	text                      // the "text" of a map ({"text": ...}), or a string as is
	value                     // the "value" of a map (charity amounts)
)

// field is one event-specific output field: out is read from the first
// present key of from ("a.b" descends into maps), converted by kind, with
// def when every key is absent or null.
type field struct {
	out  string
	from []string
	kind fieldKind
	def  any
}

func f(out string, from ...string) field {
	if len(from) == 0 {
		from = []string{out}
	}
	return field{out: out, from: from}
}

func dt(out string, from ...string) field { fl := f(out, from...); fl.kind = datetime; return fl }

func withDef(fl field, def any) field { fl.def = def; return fl }

func txt(out, from string) field { return field{out: out, from: []string{from}, kind: text} }

func constant(out string, v any) field { return field{out: out, def: v} }

// who returns the id, login and name fields of a user prefix: who("user")
// is user_id, user_login, user_name.
func who(prefix string) []field {
	return []field{f(prefix + "_id"), f(prefix + "_login"), f(prefix + "_name")}
}

func whoFrom(out, in string) []field {
	return []field{f(out+"_id", in+"_id"), f(out+"_login", in+"_login"), f(out+"_name", in+"_name")}
}

func join(groups ...[]field) []field {
	var out []field
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

func fs(list ...field) []field { return list }

var (
	broadcaster = who("broadcaster_user")
	user        = who("user")
)

// specs holds the event-specific fields of every known type (Landale's
// normalize_event clauses). Types not listed are wrapped as
// raw_data: {raw_data: <input>}.
var specs = map[string][]field{
	"stream.online": join(fs(f("stream_id", "id")), broadcaster,
		fs(f("stream_type", "type"), dt("started_at"))),
	"stream.offline": broadcaster,
	"channel.follow": join(user, broadcaster, fs(dt("followed_at"))),
	"channel.subscribe": join(user, broadcaster, fs(f("tier"),
		withDef(f("is_gift"), false))),
	"channel.subscription.gift": join(user, broadcaster, fs(f("tier"), f("total"),
		f("cumulative_total"), withDef(f("is_anonymous"), false))),
	"channel.subscription.end": join(user, broadcaster, fs(f("tier"),
		withDef(f("is_gift"), false))),
	"channel.subscription.message": join(user, broadcaster, fs(f("tier"), txt("message", "message"),
		f("cumulative_months"), f("streak_months"), f("duration_months"))),
	"channel.cheer": join(user, broadcaster, fs(withDef(f("is_anonymous"), false), f("bits"),
		f("message"))),
	"channel.raid": join(who("from_broadcaster_user"), who("to_broadcaster_user"), fs(f("viewers"))),
	"channel.update": join(broadcaster, fs(f("title"), f("language"), f("category_id"),
		f("category_name"), withDef(f("content_classification_labels"), []any{}))),
	"channel.chat.clear":               broadcaster,
	"channel.chat.clear_user_messages": join(broadcaster, who("target_user")),
	"channel.chat.message_delete":      join(broadcaster, who("target_user"), fs(f("message_id"))),
	"channel.chat.notification": join(broadcaster, who("chatter_user"),
		fs(f("notification_type", "notice_type", "notification_type"), txt("message", "message"))),
	"channel.chat_settings.update": join(broadcaster, fs(f("emote_mode"), f("follower_mode"),
		f("follower_mode_duration_minutes"), f("slow_mode"), f("slow_mode_wait_time_seconds"),
		f("subscriber_mode"), f("unique_chat_mode"))),
	"channel.goal.begin":                                     goalFields(false, true),
	"channel.goal.progress":                                  goalFields(false, false),
	"channel.goal.end":                                       goalFields(true, false),
	"channel.channel_points_custom_reward.add":               rewardFields(),
	"channel.channel_points_custom_reward.update":            rewardFields(),
	"channel.channel_points_custom_reward.remove":            join(fs(f("id")), broadcaster, fs(f("title"), f("prompt"))),
	"channel.channel_points_custom_reward_redemption.add":    redemptionFields(),
	"channel.channel_points_custom_reward_redemption.update": redemptionFields(),
	"channel.poll.begin":                                     pollFields(false),
	"channel.poll.progress":                                  pollFields(false),
	"channel.poll.end":                                       pollFields(true),
	"channel.prediction.begin": join(fs(f("id")), broadcaster, fs(f("title"), f("outcomes"),
		f("prediction_window"), dt("started_at"), dt("locks_at"))),
	"channel.prediction.progress": join(fs(f("id")), broadcaster, fs(f("title"), f("outcomes"),
		f("prediction_window"), dt("started_at"), dt("locks_at"))),
	"channel.prediction.lock": join(fs(f("id")), broadcaster, fs(f("title"), f("outcomes"),
		dt("started_at"), dt("locked_at"))),
	"channel.prediction.end": join(fs(f("id")), broadcaster, fs(f("title"), f("winning_outcome_id"),
		f("outcomes"), f("status"), dt("started_at"), dt("ended_at"))),
	"channel.charity_campaign.donate": join(fs(f("id"), f("campaign_id")), broadcaster, user,
		fs(f("charity_name"), field{out: "amount", from: []string{"amount"}, kind: value})),
	"channel.charity_campaign.progress": join(fs(f("id")), broadcaster, fs(f("charity_name"),
		field{out: "current_amount", from: []string{"current_amount"}, kind: value},
		field{out: "target_amount", from: []string{"target_amount"}, kind: value})),
	"channel.hype_train.begin":    hypeFields(),
	"channel.hype_train.progress": hypeFields(),
	"channel.hype_train.end": join(fs(f("id")), broadcaster, fs(f("level"), f("total"),
		f("top_contributions"), dt("started_at"), dt("ended_at"), dt("cooldown_ends_at"))),
	"channel.shoutout.create": join(broadcaster, who("moderator_user"), who("to_broadcaster_user"),
		fs(dt("started_at"), f("viewer_count"), dt("cooldown_ends_at"), dt("target_cooldown_ends_at"))),
	"channel.shoutout.receive": join(broadcaster, who("from_broadcaster_user"),
		fs(f("viewer_count"), dt("started_at"))),
	"channel.vip.add":    join(user, broadcaster),
	"channel.vip.remove": join(user, broadcaster),
	"channel.ad_break.begin": join(fs(f("duration_seconds"), dt("started_at"), f("is_automatic")),
		broadcaster, who("requester_user")),
	"user.update": join(user, fs(f("email"), f("email_verified"), f("description"))),
	"twitch.service_status": fs(constant("service_name", "twitch"), f("connected"),
		f("connection_state"), f("session_id"), f("last_connected"), f("last_error"),
		f("subscription_count"), f("websocket_url")),

	"obs.connection_established": fs(constant("connection_state", "connected"), f("session_id"),
		f("websocket_version"), f("rpc_version"), withDef(f("authentication"), false)),
	"obs.connection_lost": fs(constant("connection_state", "disconnected"), f("session_id"),
		f("reason"), withDef(f("reconnecting"), false)),
	"obs.scene_changed": fs(f("scene_name", "scene_name", "sceneName"), f("previous_scene"),
		f("session_id")),
	"obs.stream_started":    outputFields("stream_status", "active", true),
	"obs.stream_stopped":    outputFields("stream_status", "inactive", false),
	"obs.recording_started": outputFields("recording_status", "active", true),
	"obs.recording_stopped": outputFields("recording_status", "inactive", false),
	"obs.websocket_event": fs(f("event_type", "eventType"), f("session_id"),
		f("raw_data", "eventData")),
	"obs.unknown_event": fs(f("obs_event_type"), f("obs_event_data"), f("session_id")),

	"ironmon.init": fs(f("game_type"), f("game_name"), f("version"), f("difficulty"), f("run_id")),
	"ironmon.seed": fs(f("seed_count"), f("run_id")),
	"ironmon.checkpoint": fs(f("checkpoint_id"), f("checkpoint_name"), f("run_id"), f("seed_count"),
		f("location_id"), f("location_name")),
	"ironmon.battle_start": fs(f("battle_type"), f("trainer_name"), f("opponent_pokemon"), f("run_id")),
	"ironmon.battle_end":   fs(f("battle_result"), f("winner"), f("run_id")),
	"ironmon.pokemon_update": fs(f("pokemon_name"), f("pokemon_level"), f("pokemon_hp"),
		f("pokemon_status"), f("run_id")),
	"ironmon.run_started":    fs(f("seed_id"), f("challenge_id"), f("run_id")),
	"ironmon.run_checkpoint": fs(f("seed_id"), f("checkpoint"), f("passed"), f("run_id")),

	"rainwave.song_changed": fs(f("song_id", "current_song.id", "song_id"),
		f("song_title", "current_song.title", "song_title"), f("artist", "current_song.artist", "artist"),
		f("album", "current_song.album", "album"), f("station_id"), f("station_name"),
		withDef(f("listening"), false)),
	"rainwave.update": fs(f("station_id"), f("station_name"), f("listening"),
		f("song_id", "current_song.id"), f("song_title", "current_song.title"),
		f("artist", "current_song.artist"), f("album", "current_song.album"), f("enabled")),
	"rainwave.station_changed": fs(f("station_id"), f("station_name"), f("previous_station_id"),
		f("listening")),
	"rainwave.listening_started": fs(constant("listening", true), f("station_id"), f("station_name")),
	"rainwave.listening_stopped": fs(constant("listening", false), f("station_id"), f("station_name")),

	"system.service_started": fs(f("service_name", "service_name", "service"),
		constant("service_status", "started"), f("version"), f("pid")),
	"system.service_stopped": fs(f("service_name", "service_name", "service"),
		constant("service_status", "stopped"), f("reason")),
	"system.health_check": fs(f("service_name", "service_name", "service"),
		f("health_status", "health_status", "status"), f("checks_passed", "details.checks_passed"),
		f("checks_failed", "details.checks_failed"), f("uptime", "details.uptime"),
		f("memory_usage", "details.memory_usage"), f("cpu_usage", "details.cpu_usage"),
		f("disk_usage", "details.disk_usage"), f("error_count", "details.error_count")),
	"system.performance_metric": fs(f("metric_name", "metric_name", "metric"),
		f("metric_value", "metric_value", "value"), f("metric_unit", "metric_unit", "unit"),
		f("component"), f("process_id", "metadata.process_id"), f("hostname", "metadata.hostname"),
		f("environment", "metadata.environment")),

	"stream.state_updated": fs(f("current_show"), f("base"), f("alerts"), f("ticker"), f("timeline"),
		f("version"), f("metadata")),
	"stream.show_changed": fs(f("show"), f("game_id"), f("game_name"), f("title"), dt("changed_at")),
	"stream.interrupt_removed": fs(f("interrupt_id"),
		dt("removal_timestamp", "removal_timestamp", "timestamp")),
	"stream.emote_increment": fs(withDef(f("emotes"), []any{}), withDef(f("native_emotes"), []any{}),
		f("user_name"), dt("increment_timestamp", "increment_timestamp", "timestamp")),
	"stream.takeover_started": fs(f("takeover_type"), f("message"), f("duration"),
		dt("takeover_timestamp", "takeover_timestamp", "timestamp")),
	"stream.takeover_cleared": fs(dt("clear_timestamp", "clear_timestamp", "timestamp")),
	"stream.goals_updated": fs(withDef(f("follower_goal"), map[string]any{}),
		withDef(f("sub_goal"), map[string]any{}), withDef(f("new_sub_goal"), map[string]any{}),
		dt("goals_timestamp", "goals_timestamp", "timestamp")),
}

// goalFields: Landale overwrites the event type with the goal type; this
// port keeps type = the event type and reports the goal type as goal_type.
func goalFields(end, begin bool) []field {
	cur := f("current_amount")
	if begin {
		cur = withDef(cur, 0)
	}
	out := join(fs(f("id")), broadcaster, fs(f("goal_type", "type"), f("description"), cur,
		f("target_amount"), dt("started_at")))
	if end {
		out = append(out, withDef(f("is_achieved"), false), dt("ended_at"))
	}
	return out
}

func rewardFields() []field {
	return join(fs(f("id")), broadcaster, fs(f("is_enabled"), f("is_paused"), f("is_in_stock"),
		f("title"), f("cost"), f("prompt")))
}

func redemptionFields() []field {
	return join(fs(f("id")), broadcaster, user, fs(f("user_input"), f("status"), f("reward"),
		dt("redeemed_at")))
}

func pollFields(end bool) []field {
	out := join(fs(f("id")), broadcaster, fs(f("title"), f("choices"), f("bits_voting_enabled"),
		f("bits_per_vote"), f("channel_points_voting_enabled"), f("channel_points_per_vote"),
		dt("started_at")))
	if end {
		return append(out, f("status"), dt("ended_at"))
	}
	return append(out, dt("ends_at"))
}

func hypeFields() []field {
	return join(fs(f("id")), broadcaster, fs(f("total"), f("progress"), f("goal"),
		f("top_contributions"), f("last_contribution"), f("level"), dt("started_at"), dt("expires_at")))
}

func outputFields(statusKey, status string, active bool) []field {
	return fs(constant(statusKey, status), withDef(f("output_active", "output_active", "outputActive"), active),
		f("output_state", "output_state", "outputState"), f("session_id"))
}

// Normalize builds the normalized event of type typ from its input data
// (an EventSub "event" object or a service's payload), stamped with now.
// It does not validate; see Validate. The input is not modified.
func Normalize(typ string, data map[string]any, now time.Time) Event {
	if data == nil {
		data = map[string]any{}
	}
	e := Event{}
	if typ == "channel.chat.message" {
		chatFields(e, data)
	} else if spec, ok := specs[typ]; ok {
		for _, fl := range spec {
			e[fl.out] = extract(data, fl)
		}
	} else {
		e["raw_data"] = map[string]any{"raw_data": data}
	}
	id := firstString(data, "id", "message_id")
	e["id"] = id
	if id == nil {
		e["id"] = NewEventID()
	}
	e["type"] = typ
	e["timestamp"] = FormatTime(now)
	e["correlation_id"] = NewCorrelationID()
	e["source"] = SourceOf(typ)
	e["source_id"] = id
	e["raw_type"] = typ
	return e
}

// chatFields extracts channel.chat.message, whose emotes are computed from
// the message fragments.
func chatFields(e Event, d map[string]any) {
	e["message_id"] = d["message_id"]
	for _, fl := range broadcaster {
		e[fl.out] = extract(d, fl)
	}
	for _, fl := range whoFrom("user", "chatter_user") {
		e[fl.out] = extract(d, fl)
	}
	msg, _ := d["message"].(map[string]any)
	e["message"] = nil
	emotes, native := []any{}, []any{}
	var fragments any = []any{}
	if msg != nil {
		e["message"] = msg["text"]
		if fr, ok := msg["fragments"].([]any); ok {
			fragments = fr
			for _, x := range fr {
				m, _ := x.(map[string]any)
				if m == nil || m["type"] != "emote" {
					continue
				}
				t, _ := m["text"].(string)
				if strings.HasPrefix(t, "avalon") {
					native = append(native, t)
				} else {
					emotes = append(emotes, t)
				}
			}
		}
	}
	e["fragments"], e["emotes"], e["native_emotes"] = fragments, emotes, native
	e["color"] = d["color"]
	badges := []any{}
	if bs, ok := d["badges"].([]any); ok {
		for _, x := range bs {
			if m, ok := x.(map[string]any); ok {
				badges = append(badges, map[string]any{"set_id": m["set_id"], "id": m["id"], "info": m["info"]})
			}
		}
	}
	e["badges"] = badges
	e["message_type"] = d["message_type"]
	e["cheer_bits"] = nil
	if c, ok := d["cheer"].(map[string]any); ok {
		e["cheer_bits"] = c["bits"]
	}
	reply, _ := d["reply"].(map[string]any)
	for _, k := range []string{"parent_message_id", "parent_user_id", "parent_user_login", "parent_user_name",
		"parent_message_body", "thread_message_id", "thread_user_id", "thread_user_login", "thread_user_name"} {
		e["reply_"+k] = nil
		if reply != nil {
			e["reply_"+k] = reply[k]
		}
	}
	e["channel_points_custom_reward_id"] = d["channel_points_custom_reward_id"]
	for _, k := range []string{"source_broadcaster_user_id", "source_broadcaster_user_login",
		"source_broadcaster_user_name", "source_message_id"} {
		e[k] = d[k]
	}
	e["source_badges"] = []any{}
	if sb, ok := d["source_badges"].([]any); ok {
		e["source_badges"] = sb
	}
}

func extract(d map[string]any, fl field) any {
	for _, key := range fl.from {
		v, ok := lookup(d, key)
		if !ok || v == nil {
			continue
		}
		switch fl.kind {
		case datetime:
			return normalizeTime(v)
		case text:
			if m, ok := v.(map[string]any); ok {
				return m["text"]
			}
			return v
		case value:
			if m, ok := v.(map[string]any); ok {
				return m["value"]
			}
			return v
		}
		return v
	}
	return fl.def
}

func lookup(d map[string]any, key string) (any, bool) {
	for {
		head, rest, nested := strings.Cut(key, ".")
		v, ok := d[head]
		if !nested || !ok {
			return v, ok
		}
		m, isMap := v.(map[string]any)
		if !isMap {
			return nil, false
		}
		d, key = m, rest
	}
}

// normalizeTime parses an ISO 8601 string and re-emits it keeping its own
// precision; anything unparsable is null.
func normalizeTime(v any) any {
	s, ok := v.(string)
	if !ok {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	// Keep the input's own precision, as Elixir's DateTime does.
	digits := 0
	if i := strings.IndexByte(s, '.'); i >= 0 {
		for j := i + 1; j < len(s) && s[j] >= '0' && s[j] <= '9'; j++ {
			digits++
		}
	}
	layout := "2006-01-02T15:04:05"
	if digits > 0 {
		layout += "." + strings.Repeat("0", min(digits, 9))
	}
	return t.UTC().Format(layout + "Z")
}

func firstString(d map[string]any, keys ...string) any {
	for _, k := range keys {
		if s, ok := d[k].(string); ok && s != "" {
			return s
		}
	}
	return nil
}
