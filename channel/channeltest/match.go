package channeltest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pyre-go/pyre/channel"
)

// Matcher decides whether a payload is the one an assertion waits for.
// Every assertion that takes a want argument converts it to a Matcher:
//
//   - nil (or Any) matches every payload;
//   - a Matcher is used as it is: JSON, Subset, Check, Value;
//   - a channel.Binary matches a binary payload with exactly these bytes;
//   - a json.RawMessage is compared like JSON;
//   - a channel.Payload is compared like JSON, or like channel.Binary when it
//     is binary;
//   - any other Go value is compared like Value.
type Matcher interface {
	// MatchPayload returns nil when p matches, or an error that says how it
	// differs; the error text is shown in failure messages.
	MatchPayload(p channel.Payload) error
	// String describes the expected payload in failure messages.
	String() string
}

// Any matches every payload. It reads better than nil in some assertions.
var Any Matcher = anyMatcher{}

type anyMatcher struct{}

func (anyMatcher) MatchPayload(channel.Payload) error { return nil }
func (anyMatcher) String() string                     { return "any payload" }

// JSON is JSON text. As an expected payload it matches a JSON payload with
// the same structure and values: object key order and white space do not
// matter, numbers are compared by value (1, 1.0 and 1e0 are equal), and
// every key, type and null must agree, so a test checks the exact wire
// shape. As a payload to send it is sent as it is (it must be valid JSON).
type JSON string

// MatchPayload implements Matcher.
func (j JSON) MatchPayload(p channel.Payload) error {
	want, err := decodeJSON([]byte(j))
	if err != nil {
		return fmt.Errorf("want is not valid JSON: %w", err)
	}
	return matchDecoded(p, want, false)
}

// String implements Matcher.
func (j JSON) String() string { return compact([]byte(j)) }

func (j JSON) check() error {
	if _, err := decodeJSON([]byte(j)); err != nil {
		return fmt.Errorf("channeltest: want JSON is not valid JSON: %w", err)
	}
	return nil
}

// Value returns a Matcher for a Go value: the payload must be equal, as
// JSON, to what encoding/json makes of v, that is, to the payload a channel
// pushing v would send. Struct tags apply, and numbers compare by value
// whatever their Go types (map[string]any{"n": 1} matches {"n":1.0}). Extra
// or missing fields are differences; use Subset to ignore extra ones.
func Value(v any) Matcher { return newValueMatcher(v, false) }

// Subset returns a Matcher that accepts a payload containing want: every
// key of every object in want must be present with a matching value, and
// other keys are ignored, like an Elixir map pattern. Arrays must have the
// same length and match element by element; scalars must be equal. want is
// a Go value (encoded with encoding/json), JSON text or a json.RawMessage.
func Subset(want any) Matcher { return newValueMatcher(want, true) }

type valueMatcher struct {
	v      any
	subset bool
	want   any   // decoded JSON of v
	err    error // v cannot be encoded
	text   string
}

func newValueMatcher(v any, subset bool) *valueMatcher {
	m := &valueMatcher{v: v, subset: subset}
	var b []byte
	switch x := v.(type) {
	case JSON:
		b = []byte(x)
	case json.RawMessage:
		b = x
	default:
		b, m.err = json.Marshal(v)
		if m.err != nil {
			m.err = fmt.Errorf("channeltest: want %T cannot be encoded as JSON: %w", v, m.err)
			return m
		}
	}
	m.want, m.err = decodeJSON(b)
	if m.err != nil {
		m.err = fmt.Errorf("channeltest: want is not valid JSON: %w", m.err)
		return m
	}
	m.text = compact(b)
	return m
}

func (m *valueMatcher) MatchPayload(p channel.Payload) error {
	if m.err != nil {
		return m.err
	}
	return matchDecoded(p, m.want, m.subset)
}

func (m *valueMatcher) String() string {
	if m.err != nil {
		return fmt.Sprintf("<%v>", m.err)
	}
	if m.subset {
		return "a payload containing " + m.text
	}
	return m.text
}

func (m *valueMatcher) check() error { return m.err }

type binaryMatcher []byte

func (b binaryMatcher) MatchPayload(p channel.Payload) error {
	if !p.IsBinary() {
		return fmt.Errorf("payload is JSON %s, want binary (%d bytes)", truncate(compact(p.Bytes())), len(b))
	}
	if !bytes.Equal(p.Bytes(), b) {
		return fmt.Errorf("binary payload differs: got %s, want %s", hexPreview(p.Bytes()), hexPreview(b))
	}
	return nil
}

func (b binaryMatcher) String() string { return "binary " + hexPreview(b) }

// Check returns a Matcher that runs fn on each candidate payload: the
// payload matches when fn reports no failure through t. fn may use
// testify's assert and require packages with t, since *CollectT implements
// their TestingT interfaces:
//
//	client.AssertPush("tick", channeltest.Check(func(t *channeltest.CollectT, p channel.Payload) {
//		m := p.Map()
//		assert.Equal(t, "dashboard", m["source"])
//		assert.Greater(t, m["seq"], 0.0)
//	}))
//
// fn runs on the goroutine of the assertion, once per frame of the right
// event (and topic) until one passes, and again on near misses to write the
// failure message; it must not call the Client.
func Check(fn func(t *CollectT, p channel.Payload)) Matcher { return checkMatcher{fn} }

type checkMatcher struct {
	fn func(t *CollectT, p channel.Payload)
}

func (c checkMatcher) MatchPayload(p channel.Payload) (err error) {
	ct := &CollectT{}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(failNow); !ok {
				err = fmt.Errorf("Check function panicked: %v", v)
				return
			}
		}
		if len(ct.errs) > 0 {
			err = errors.New(strings.Join(ct.errs, "\n"))
		}
	}()
	c.fn(ct, p)
	return nil
}

func (checkMatcher) String() string { return "a payload accepted by the Check function" }

// CollectT collects the failures of the assertions a Check function makes.
// It implements the TestingT interfaces of testify's assert and require
// packages.
type CollectT struct {
	errs []string
}

type failNow struct{}

// Errorf records a failure. The "Error Trace" of a testify message is
// left out: it points into channeltest, and the assertion's own failure
// names the test's line.
func (c *CollectT) Errorf(format string, args ...any) {
	c.errs = append(c.errs, strings.TrimSpace(dropErrorTrace(fmt.Sprintf(format, args...))))
}

// dropErrorTrace removes the "Error Trace:" field of a testify message:
// its label line and the continuation lines after it.
func dropErrorTrace(msg string) string {
	if !strings.Contains(msg, "Error Trace:") {
		return msg
	}
	lines := strings.Split(msg, "\n")
	out := lines[:0]
	skipping := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(strings.TrimSpace(l), "Error Trace:"):
			skipping = true
		case skipping && strings.HasPrefix(l, "\t") && strings.HasPrefix(strings.TrimLeft(l[1:], " "), "\t"):
		default:
			skipping = false
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// FailNow records a failure and stops the Check function.
func (c *CollectT) FailNow() {
	if len(c.errs) == 0 {
		c.errs = append(c.errs, "FailNow called")
	}
	panic(failNow{})
}

// Helper does nothing; it lets testify mark its frames as helpers.
func (c *CollectT) Helper() {}

// Failed reports whether a failure was recorded.
func (c *CollectT) Failed() bool { return len(c.errs) > 0 }

// toMatcher converts an assertion's want argument (see Matcher).
func toMatcher(want any) Matcher {
	switch w := want.(type) {
	case nil:
		return Any
	case Matcher:
		return w
	case channel.Binary:
		return binaryMatcher(w)
	case json.RawMessage:
		return JSON(w)
	case channel.Payload:
		if w.IsBinary() {
			return binaryMatcher(w.Bytes())
		}
		if len(w.Bytes()) == 0 {
			return JSON("{}")
		}
		return JSON(w.Bytes())
	}
	return Value(want)
}

// checkWant reports a want that can never match (invalid JSON, a value
// encoding/json refuses), so assertions fail at once instead of timing out.
func checkWant(m Matcher) error {
	if c, ok := m.(interface{ check() error }); ok {
		return c.check()
	}
	return nil
}

// AssertPayload fails the test unless p matches want (see Matcher). It is
// for payloads at hand: a Frame returned by an assertion, a join reply.
func AssertPayload(tb testing.TB, p channel.Payload, want any) bool {
	tb.Helper()
	m := toMatcher(want)
	if err := m.MatchPayload(p); err != nil {
		tb.Fatalf("channeltest: payload does not match\n  got:  %s\n  want: %s\n  %s", describePayload(p), m, indent(err.Error(), "  "))
		return false
	}
	return true
}

// Decode decodes a JSON payload into a T, failing the test if it cannot.
// Use it to hand payloads to testify assertions:
//
//	state := channeltest.Decode[State](t, f.Payload())
//	assert.Equal(t, 3, state.Count)
func Decode[T any](tb testing.TB, p channel.Payload) T {
	tb.Helper()
	var v T
	if err := p.Decode(&v); err != nil {
		tb.Fatalf("channeltest: cannot decode payload %s into %T: %v", describePayload(p), v, err)
	}
	return v
}

// AssertWire fails the test unless frame f, encoded with serializer s as
// the WebSocket transport would send it, equals want: for text frames, JSON
// text compared like JSON (key order and white space do not matter); for
// binary frames, the exact bytes.
//
//	channeltest.AssertWire(t, f, channel.V2, `["1",null,"room:lobby","new_msg",{"body":"hi"}]`)
func AssertWire(tb testing.TB, f *channel.Frame, s channel.Serializer, want string) bool {
	tb.Helper()
	b, bin, err := f.Encode(s)
	if err != nil {
		tb.Fatalf("channeltest: frame %s cannot be encoded with %v: %v", f, s, err)
		return false
	}
	if bin {
		if string(b) != want {
			tb.Fatalf("channeltest: binary frame differs\n  got:  %s\n  want: %s", hexPreview(b), hexPreview([]byte(want)))
			return false
		}
		return true
	}
	w, err := decodeJSON([]byte(want))
	if err != nil {
		tb.Fatalf("channeltest: AssertWire: want is not valid JSON: %v", err)
		return false
	}
	got, err := decodeJSON(b)
	if err != nil {
		tb.Fatalf("channeltest: %v frame is not valid JSON (%v): %s", s, err, truncate(string(b)))
		return false
	}
	if d := diffJSON(got, w, false); d != "" {
		tb.Fatalf("channeltest: %v frame differs\n  got:  %s\n  want: %s\n  %s", s, b, compact([]byte(want)), d)
		return false
	}
	return true
}

// matchDecoded compares payload p with the decoded JSON value want.
func matchDecoded(p channel.Payload, want any, subset bool) error {
	if p.IsBinary() {
		return fmt.Errorf("payload is binary (%s), want JSON", hexPreview(p.Bytes()))
	}
	raw := p.Bytes()
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	got, err := decodeJSON(raw)
	if err != nil {
		return fmt.Errorf("payload is not valid JSON (%v): %s", err, truncate(string(raw)))
	}
	if d := diffJSON(got, want, subset); d != "" {
		return errors.New("payload differs: " + d)
	}
	return nil
}

// diffJSON describes how decoded JSON values differ, "" if they do not.
func diffJSON(got, want any, subset bool) string {
	d := differ{subset: subset}
	d.diff("$", got, want)
	if d.more > 0 {
		d.out = append(d.out, fmt.Sprintf("... and %d more differences", d.more))
	}
	return strings.Join(d.out, "; ")
}

// decodeJSON decodes one JSON value, keeping numbers exact.
func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err == nil {
		return nil, errors.New("extra data after the JSON value")
	}
	return v, nil
}

const maxDiffs = 4

type differ struct {
	subset bool
	out    []string
	more   int
}

func (d *differ) add(format string, args ...any) {
	if len(d.out) >= maxDiffs {
		d.more++
		return
	}
	d.out = append(d.out, fmt.Sprintf(format, args...))
}

func (d *differ) diff(path string, got, want any) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			d.add("%s: got %s, want an object %s", path, render(got), render(want))
			return
		}
		keys := make([]string, 0, len(w))
		for k := range w {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				d.add("%s: missing, want %s", joinPath(path, k), render(w[k]))
				continue
			}
			d.diff(joinPath(path, k), gv, w[k])
		}
		if d.subset {
			return
		}
		extra := make([]string, 0)
		for k := range g {
			if _, ok := w[k]; !ok {
				extra = append(extra, k)
			}
		}
		slices.Sort(extra)
		for _, k := range extra {
			d.add("%s: unexpected, got %s", joinPath(path, k), render(g[k]))
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			d.add("%s: got %s, want an array %s", path, render(got), render(want))
			return
		}
		if len(g) != len(w) {
			d.add("%s: got %d elements %s, want %d elements %s", path, len(g), render(got), len(w), render(want))
			return
		}
		for i := range w {
			d.diff(path+"["+strconv.Itoa(i)+"]", g[i], w[i])
		}
	case json.Number:
		g, ok := got.(json.Number)
		if !ok || !numEqual(g, w) {
			d.add("%s: got %s, want %s", path, render(got), render(want))
		}
	default: // string, bool, nil
		if got != want {
			d.add("%s: got %s, want %s", path, render(got), render(want))
		}
	}
}

func numEqual(a, b json.Number) bool {
	if a == b {
		return true
	}
	x, ok1 := new(big.Rat).SetString(string(a))
	y, ok2 := new(big.Rat).SetString(string(b))
	return ok1 && ok2 && x.Cmp(y) == 0
}

func joinPath(path, key string) string {
	ident := key != ""
	for i, r := range key {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			ident = false
			break
		}
	}
	if ident {
		return path + "." + key
	}
	return path + "[" + strconv.Quote(key) + "]"
}

// render shows a decoded JSON value in a failure message.
func render(v any) string {
	if v == nil {
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%v", v)
	}
	return truncate(string(b))
}

// compact renders JSON text on one line; invalid JSON is shown as it is.
func compact(b []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return truncate(string(b))
	}
	return truncate(buf.String())
}

func describePayload(p channel.Payload) string {
	if p.IsBinary() {
		return "binary " + hexPreview(p.Bytes())
	}
	if len(p.Bytes()) == 0 {
		return "{}"
	}
	return compact(p.Bytes())
}

const maxShown = 300

func truncate(s string) string {
	if len(s) <= maxShown {
		return s
	}
	return s[:maxShown] + fmt.Sprintf("…(%d bytes)", len(s))
}

func hexPreview(b []byte) string {
	const n = 32
	if len(b) <= n {
		return fmt.Sprintf("%d bytes %x", len(b), b)
	}
	return fmt.Sprintf("%d bytes %x…", len(b), b[:n])
}

func indent(s, prefix string) string {
	return strings.ReplaceAll(s, "\n", "\n"+prefix)
}
