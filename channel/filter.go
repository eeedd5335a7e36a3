package channel

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unique"
	"weak"
)

// FilterParam is the join-param key a client puts its filter under, for a
// channel that lets clients filter its broadcasts (see Filterable):
//
//	socket.channel("prices:all", {filter: {events: ["tick"], where: {symbol: ["BTC", "ETH"]}}}) // phoenix.js
const FilterParam = "filter"

// ErrInvalidFilter is matched by every error of ParseFilter and
// FilterFromParams (a *FilterError).
var ErrInvalidFilter = errors.New("channel: invalid filter")

// FilterError tells what is wrong with a client's filter. It matches
// ErrInvalidFilter. A Filterable channel's join refused for it is answered
// {"reason":"invalid filter","detail":Detail}.
type FilterError struct {
	// Detail names the offending part and the problem, e.g.
	// `where "a.b.c.d.e": path deeper than 4`.
	Detail string
}

// Error implements error.
func (e *FilterError) Error() string { return "channel: invalid filter: " + e.Detail }

// Is makes errors.Is(err, ErrInvalidFilter) true.
func (e *FilterError) Is(target error) bool { return target == ErrInvalidFilter }

func filterErr(format string, args ...any) error {
	return &FilterError{Detail: fmt.Sprintf(format, args...)}
}

// FilterLimits bound what a client's filter may ask for, so that no client
// can make a fan-out expensive: every bound is a number of comparisons made
// for each broadcast to that client. The zero value of a field means its
// default.
type FilterLimits struct {
	// MaxEvents bounds the event names in "events" and "except" together.
	// Defaults to 32.
	MaxEvents int
	// MaxConditions bounds the field paths in "where". Defaults to 8.
	MaxConditions int
	// MaxValues bounds the values of one condition (a list means "any
	// of"). Defaults to 16.
	MaxValues int
	// MaxDepth bounds the segments of a field path ("a.b.c" has 3).
	// Defaults to 4.
	MaxDepth int
	// MaxNameBytes bounds the length of an event name and of a field path.
	// Defaults to 256.
	MaxNameBytes int
}

func (l *FilterLimits) withDefaults() FilterLimits {
	var o FilterLimits
	if l != nil {
		o = *l
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = 32
	}
	if o.MaxConditions <= 0 {
		o.MaxConditions = 8
	}
	if o.MaxValues <= 0 {
		o.MaxValues = 16
	}
	if o.MaxDepth <= 0 {
		o.MaxDepth = 4
	}
	if o.MaxNameBytes <= 0 {
		o.MaxNameBytes = 256
	}
	return o
}

// Filterable is implemented by a channel that lets its clients filter its
// broadcasts: the server then reads the FilterParam ("filter") key of the
// join params before Join, refuses the join with {"reason":"invalid
// filter","detail":…} if it is malformed or exceeds the limits, and
// otherwise applies it to the channel's broadcasts from the join reply on
// (Socket.Filter returns it in Join). A channel that is not Filterable
// ignores the key, and it reaches Join like any other param.
type Filterable interface {
	// FilterLimits returns the bounds of the filters the channel's clients
	// may set; nil means the defaults of FilterLimits. It is called once
	// per join.
	FilterLimits() *FilterLimits
}

// A Filter is a client's choice of the broadcasts it wants on one joined
// channel. The server checks it for each broadcast before anything is
// queued for that client: a broadcast the filter drops costs that client
// no queueing, no encoding, no write and no HandleOut, and is counted in
// Stats.Filtered. Only broadcasts are filtered; replies and pushes
// (Socket.Push, and so presence_state and intercepted broadcasts pushed by
// HandleOut) always go out.
//
// The filter is given as a JSON object, the value of the "filter" join
// param (see Filterable) or the argument of ParseFilter:
//
//	{"events": ["tick", "trade"],
//	 "except": ["presence_diff"],
//	 "where":  {"symbol": ["BTC", "ETH"], "venue.region": "eu", "live": true}}
//
// Every key is optional; any other key is an error. A broadcast is
// checked in this order:
//
//   - an event named in "except" is dropped;
//   - a protocol event (a name starting with "phx_", or "presence_diff")
//     passes: "events" and "where" never drop one, so a client that does
//     not want presence diffs says so in "except";
//   - any other event passes when "events" is absent or names it, and
//     every condition of "where" holds (an absent or empty "where" always
//     holds).
//
// A condition maps a field path to a value or a list of values: the
// payload must be a JSON object whose field at that path equals the value
// (or one of the listed values). A path is a top-level key ("symbol") or
// keys of nested objects joined with dots ("venue.region"); it cannot
// address a key containing a dot, nor enter an array. Values are strings,
// numbers, booleans or null, compared by JSON type and value: "1" does not
// equal 1, 1 equals 1.0 (numbers compare as float64, as in JavaScript), null
// equals only null, and a missing field equals nothing. A payload that is
// not a JSON object fails every condition. A binary payload is opaque:
// conditions do not apply to it, only the event rules.
//
// The payload is never decoded into Go values: on each node, a broadcast's
// payload is checked (valid JSON, an object) once for all the subscribers
// whose filters have conditions, and not at all when none do, and each
// field path is found by scanning the JSON text, once per broadcast for up
// to 8 distinct paths, without allocating. Subscribers with equal filters
// (see String) share one evaluation per broadcast. For a key repeated in
// an object the last one counts, as in encoding/json.
//
// A Filter is immutable and safe for concurrent use; one may be shared by
// several channels. The nil *Filter passes everything. Filters trim
// bandwidth and client work; they are not access control: a client can
// always rejoin without one.
type Filter struct {
	events []string // allow list; nil: every event
	except []string
	where  []filterCond
	// key is the filter's canonical JSON (String), interned: equal
	// filters, whoever parsed them, have equal keys and share one
	// evaluation per fan-out.
	key unique.Handle[string]
	// shared is set when a second parse of the filter got this one:
	// only then is its outcome worth remembering in a fan-out.
	shared atomic.Bool
}

type filterCond struct {
	path    string                // as the client wrote it, for String
	pathKey unique.Handle[string] // path interned: the fan-out looks each path up once
	keys    []string              // path split at dots
	vals    []any                 // string, float64, bool or nil, as parsed
	want    []jsonScalar          // vals, typed for the fan-out's comparisons
}

// ParseFilter parses a filter given as a JSON object (see Filter) within
// lim (nil: the defaults of FilterLimits). It returns a nil *Filter, which
// passes everything, for null and for an object that asks for nothing
// ({}). Errors are *FilterError.
func ParseFilter(spec []byte, lim *FilterLimits) (*Filter, error) {
	l := lim.withDefaults()
	spec = bytes.TrimSpace(spec)
	if len(spec) == 0 || string(spec) == "null" {
		return nil, nil
	}
	if spec[0] != '{' {
		return nil, filterErr("not an object")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(spec, &fields); err != nil {
		return nil, filterErr("malformed JSON")
	}
	f := &Filter{}
	for k, raw := range fields {
		var err error
		switch k {
		case "events":
			// "events": [] (not nil) asks for no application events.
			f.events, err = parseEventList(k, raw, l)
		case "except":
			f.except, err = parseEventList(k, raw, l)
		case "where":
			f.where, err = parseWhere(raw, l)
		default:
			err = filterErr("unknown key %q", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if len(f.events)+len(f.except) > l.MaxEvents {
		return nil, filterErr("more than %d event names", l.MaxEvents)
	}
	if len(f.except) == 0 {
		f.except = nil
	}
	if len(f.where) == 0 {
		f.where = nil
	}
	if f.events == nil && f.except == nil && f.where == nil {
		return nil, nil
	}
	f.key = unique.Make(f.canonical())
	return internFilter(f), nil
}

// filters maps the key of each Filter in use to it (a weak.Pointer), so
// that equal filters are one value: a fan-out to many subscribers with the
// same filter then reads one Filter, not one per subscriber. An entry goes
// when its Filter is collected.
var filters sync.Map // unique.Handle[string] → weak.Pointer[Filter]

func internFilter(f *Filter) *Filter {
	if v, ok := filters.Load(f.key); ok {
		if g := v.(weak.Pointer[Filter]).Value(); g != nil {
			if !g.shared.Load() {
				g.shared.Store(true)
			}
			return g
		}
	}
	wp := weak.Make(f)
	filters.Store(f.key, wp) // a concurrent parse of an equal filter may win: both are correct
	runtime.AddCleanup(f, func(e filterEntry) { filters.CompareAndDelete(e.key, e.wp) }, filterEntry{f.key, wp})
	return f
}

type filterEntry struct {
	key unique.Handle[string]
	wp  weak.Pointer[Filter]
}

// FilterFromParams parses the filter under FilterParam in a channel's join
// params, as ParseFilter. It returns nil, nil when the key is absent or the
// params are not a JSON object. A Filterable channel has this done for it;
// another channel may call it in Join and pass the result to
// Socket.SetFilter, to decide per join whether clients may filter.
func FilterFromParams(params Payload, lim *FilterLimits) (*Filter, error) {
	if params.binary || len(params.raw) == 0 || params.raw[0] != '{' {
		return nil, nil
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(params.raw, &fields); err != nil {
		return nil, nil // not ours to judge: Join sees the params as they are
	}
	raw, ok := fields[FilterParam]
	if !ok {
		return nil, nil
	}
	return ParseFilter(raw, lim)
}

func parseEventList(key string, raw json.RawMessage, l FilterLimits) ([]string, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var names []any
	if err := json.Unmarshal(raw, &names); err != nil {
		return nil, filterErr("%s: not a list of event names", key)
	}
	if len(names) > l.MaxEvents {
		return nil, filterErr("more than %d event names", l.MaxEvents)
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		s, ok := n.(string)
		switch {
		case !ok || s == "":
			return nil, filterErr("%s: event names must be non-empty strings", key)
		case len(s) > l.MaxNameBytes:
			return nil, filterErr("%s: event name longer than %d bytes", key, l.MaxNameBytes)
		}
		out = append(out, s)
	}
	// Sorted, without repeats: the canonical form, so that equal lists
	// make equal filters.
	slices.Sort(out)
	return slices.Compact(out), nil
}

func parseWhere(raw json.RawMessage, l FilterLimits) ([]filterCond, error) {
	if string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, filterErr("where: not an object")
	}
	if len(m) > l.MaxConditions {
		return nil, filterErr("where: more than %d conditions", l.MaxConditions)
	}
	conds := make([]filterCond, 0, len(m))
	for path, v := range m {
		if len(path) > l.MaxNameBytes {
			return nil, filterErr("where: path longer than %d bytes", l.MaxNameBytes)
		}
		keys := strings.Split(path, ".")
		if len(keys) > l.MaxDepth {
			return nil, filterErr("where %q: path deeper than %d", path, l.MaxDepth)
		}
		if slices.Contains(keys, "") {
			return nil, filterErr("where %q: empty path segment", path)
		}
		var vals []any
		if list, ok := v.([]any); ok {
			if len(list) == 0 {
				return nil, filterErr("where %q: empty list", path)
			}
			if len(list) > l.MaxValues {
				return nil, filterErr("where %q: more than %d values", path, l.MaxValues)
			}
			vals = list
		} else {
			vals = []any{v}
		}
		for _, x := range vals {
			switch x.(type) {
			case string, float64, bool, nil:
			default:
				return nil, filterErr("where %q: values must be strings, numbers, booleans or null", path)
			}
		}
		want := make([]jsonScalar, len(vals))
		for i, x := range vals {
			want[i] = scalarFromValue(x)
		}
		conds = append(conds, filterCond{path: path, pathKey: unique.Make(path), keys: keys, vals: vals, want: want})
	}
	// A canonical order: String is stable and the cheap (shallow) paths
	// are tried first.
	slices.SortFunc(conds, func(a, b filterCond) int { return strings.Compare(a.path, b.path) })
	return conds, nil
}

// Match reports whether the filter passes a broadcast of event with
// payload (the rules are in Filter's doc). It looks into the payload
// itself; the server's fan-out shares one look among all subscribers.
func (f *Filter) Match(event string, payload Payload) bool {
	var doc payloadDoc
	return f.pass(event, payload.raw, payload.binary, &doc)
}

// HasConditions reports whether the filter has "where" conditions, which
// look into payloads.
func (f *Filter) HasConditions() bool { return f != nil && len(f.where) > 0 }

// String returns the filter as canonical JSON, for logs: the form
// ParseFilter accepts, event names sorted without repeats and conditions
// sorted by path, so that equal filters have equal strings. The nil
// *Filter is "null".
func (f *Filter) String() string {
	if f == nil {
		return "null"
	}
	return f.key.Value()
}

func (f *Filter) canonical() string {
	m := map[string]any{}
	if f.events != nil {
		m["events"] = f.events
	}
	if f.except != nil {
		m["except"] = f.except
	}
	if f.where != nil {
		w := make(map[string]any, len(f.where))
		for _, c := range f.where {
			if len(c.vals) == 1 {
				w[c.path] = c.vals[0]
			} else {
				w[c.path] = c.vals
			}
		}
		m["where"] = w
	}
	b, _ := json.Marshal(m) // strings, float64s, bools and nils only; keys sorted
	return string(b)
}

// isProtocolEvent reports whether event is one the filter's "events" and
// "where" never drop.
func isProtocolEvent(event string) bool {
	return strings.HasPrefix(event, "phx_") || event == "presence_diff"
}

// pass is Match for the fan-out. doc belongs to the broadcast: it holds
// what earlier calls found in its payload (see payloadDoc) and the
// outcome of the last few distinct filters, so that subscribers with
// equal filters cost one comparison each after the first.
func (f *Filter) pass(event string, payload []byte, binary bool, doc *payloadDoc) bool {
	if f == nil {
		return true
	}
	if !f.shared.Load() {
		return f.decide(event, payload, binary, doc)
	}
	if ok, known := doc.recall(f); known {
		return ok
	}
	ok := f.decide(event, payload, binary, doc)
	doc.remember(f, ok)
	return ok
}

func (f *Filter) decide(event string, payload []byte, binary bool, doc *payloadDoc) bool {
	if len(f.except) > 0 && slices.Contains(f.except, event) {
		return false
	}
	if doc.protocolEvent(event) {
		return true
	}
	if f.events != nil && !slices.Contains(f.events, event) {
		return false
	}
	if len(f.where) == 0 || binary {
		return true
	}
	if !doc.object(payload) {
		return false // not a JSON object: no condition holds
	}
	for i := range f.where {
		c := &f.where[i]
		v, ok := doc.field(c)
		if !ok || !c.matches(v) {
			return false
		}
	}
	return true
}

// matches reports whether v equals one of the condition's values.
func (c *filterCond) matches(v *jsonScalar) bool {
	for i := range c.want {
		if v.equals(&c.want[i]) {
			return true
		}
	}
	return false
}

// payloadDoc is what the filters of one broadcast's subscribers share:
// whether the payload is a JSON object (checked once), the values at the
// paths looked up so far, and the outcomes of recent filters. It is used
// by one goroutine, the one fanning the broadcast out, and only for that
// broadcast.
type payloadDoc struct {
	protocol uint8  // 0: not known yet; 1: a protocol event; 2: not one
	checked  bool   // isObj and payload are set
	isObj    bool   // the payload is valid JSON and an object
	payload  []byte // the payload, once checked

	// memo holds the outcome of the last few distinct filters checked
	// against this broadcast: subscribers with equal filters (the usual
	// case: many clients asking for the same thing) cost one handle
	// comparison each after the first.
	memo  [filterMemo]memoEntry
	nmemo int

	// fields holds the values at the last few paths looked up: distinct
	// filters mostly ask about the same few fields (with other values).
	fields  [fieldMemo]fieldEntry
	nfields int
}

// fieldMemo is the number of field paths a fan-out remembers.
const fieldMemo = 8

type fieldEntry struct {
	path  unique.Handle[string]
	v     jsonScalar
	found bool
}

// field returns the value at c's path in the payload (which object must
// have reported to be a JSON object), looking each path up once per
// broadcast while no more than fieldMemo paths are in use.
func (d *payloadDoc) field(c *filterCond) (*jsonScalar, bool) {
	for i := range min(d.nfields, fieldMemo) {
		if e := &d.fields[i]; e.path == c.pathKey {
			return &e.v, e.found
		}
	}
	e := &d.fields[d.nfields%fieldMemo]
	d.nfields++
	e.path = c.pathKey
	e.v, e.found = findPath(d.payload, c.keys)
	return &e.v, e.found
}

// filterMemo is the number of distinct filters a fan-out remembers.
const filterMemo = 4

// memoEntry is the outcome of a filter. Filters are interned (equal
// filters are one *Filter), so the pointer identifies the filter, and
// comparing it needs no load from the Filter.
type memoEntry struct {
	f    *Filter
	pass bool
}

func (d *payloadDoc) recall(f *Filter) (pass, known bool) {
	for i := range min(d.nmemo, filterMemo) {
		if d.memo[i].f == f {
			return d.memo[i].pass, true
		}
	}
	return false, false
}

func (d *payloadDoc) remember(f *Filter, pass bool) {
	d.memo[d.nmemo%filterMemo] = memoEntry{f: f, pass: pass}
	d.nmemo++
}

// protocolEvent is isProtocolEvent(event), worked out once per broadcast.
func (d *payloadDoc) protocolEvent(event string) bool {
	if d.protocol == 0 {
		d.protocol = 2
		if isProtocolEvent(event) {
			d.protocol = 1
		}
	}
	return d.protocol == 1
}

// object reports whether payload is valid JSON and an object, checking it
// on the first call only.
func (d *payloadDoc) object(payload []byte) bool {
	if !d.checked {
		d.checked = true
		d.payload = payload
		d.isObj = isJSONObject(payload)
	}
	return d.isObj
}

// filterRefusal is the join error response for a malformed filter.
func filterRefusal(err error) map[string]string {
	detail := err.Error()
	var fe *FilterError
	if errors.As(err, &fe) {
		detail = fe.Detail
	}
	return map[string]string{"reason": "invalid filter", "detail": detail}
}

// SetFilter sets the client's filter of this channel's broadcasts (see
// Filter); nil removes it. It takes effect from the next broadcast and
// may be called from any goroutine: in Join, with a filter from
// FilterFromParams, or later, for a client event that changes the filter
// without a rejoin. A Filterable channel has the one from its join params
// set before Join.
func (s *Socket) SetFilter(f *Filter) { s.p.filter.Store(f) }

// Filter returns the client's filter of this channel's broadcasts, nil
// when there is none.
func (s *Socket) Filter() *Filter { return s.p.filter.Load() }
