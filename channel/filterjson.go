package channel

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// This file finds the values a filter's conditions ask about in a JSON
// payload without decoding it: a broadcast's payload is checked once with
// json.Valid, then each path is found by scanning the text, which costs
// no allocation for paths that spell plain keys. Decoding the payload
// into a map would cost a few microseconds and dozens of allocations per
// broadcast, most of the price of a filtered fan-out.

// jsonKind is the JSON type of a value found at a path.
type jsonKind uint8

const (
	jsonOther  jsonKind = iota // object or array: equals no condition value
	jsonString                 // str holds the unescaped bytes
	jsonNumber                 // num holds the value
	jsonBool                   // b holds the value
	jsonNull
)

// jsonScalar is a value found in a payload.
type jsonScalar struct {
	kind jsonKind
	str  []byte
	num  float64
	b    bool
}

// scalarFromValue types a condition value (a string, float64, bool or
// nil).
func scalarFromValue(x any) jsonScalar {
	switch w := x.(type) {
	case string:
		return jsonScalar{kind: jsonString, str: []byte(w)}
	case float64:
		return jsonScalar{kind: jsonNumber, num: w}
	case bool:
		return jsonScalar{kind: jsonBool, b: w}
	case nil:
		return jsonScalar{kind: jsonNull}
	}
	return jsonScalar{} // equals nothing
}

// equals compares a value found in a payload with a condition value, as
// encoding/json would decode the first: same JSON type and value. An
// object or array (jsonOther) equals nothing.
func (v *jsonScalar) equals(w *jsonScalar) bool {
	if v.kind != w.kind {
		return false
	}
	switch v.kind {
	case jsonString:
		return string(v.str) == string(w.str)
	case jsonNumber:
		return v.num == w.num
	case jsonBool:
		return v.b == w.b
	case jsonNull:
		return true
	}
	return false
}

// isJSONObject reports whether payload is valid JSON whose value is an
// object.
func isJSONObject(payload []byte) bool {
	i := skipWS(payload, 0)
	return i < len(payload) && payload[i] == '{' && json.Valid(payload)
}

// findPath returns the value at keys in doc, a valid JSON object: for
// each key the value of its last occurrence in the object, as
// encoding/json keeps when it decodes into a map.
func findPath(doc []byte, keys []string) (jsonScalar, bool) {
	v := doc
	for _, k := range keys {
		i := skipWS(v, 0)
		if i >= len(v) || v[i] != '{' {
			return jsonScalar{}, false
		}
		var ok bool
		if v, ok = findKey(v[i:], k); !ok {
			return jsonScalar{}, false
		}
	}
	return scalarOf(v), true
}

// findKey returns the value of the last occurrence of key in obj, a valid
// JSON object starting at obj[0].
func findKey(obj []byte, key string) ([]byte, bool) {
	var found []byte
	ok := false
	i := skipWS(obj, 1)
	for i < len(obj) && obj[i] == '"' {
		end, escaped := scanString(obj, i)
		name := obj[i+1 : end-1]
		match := false
		if escaped || !utf8.Valid(name) {
			// As encoding/json reads it: escapes resolved, invalid
			// UTF-8 replaced.
			var s string
			match = json.Unmarshal(obj[i:end], &s) == nil && s == key
		} else {
			match = string(name) == key
		}
		i = skipWS(obj, end)
		i = skipWS(obj, i+1) // the colon
		start := i
		i = skipValue(obj, i)
		if match {
			found, ok = obj[start:i], true
		}
		i = skipWS(obj, i)
		if i < len(obj) && obj[i] == ',' {
			i = skipWS(obj, i+1)
		}
	}
	return found, ok
}

// scalarOf classifies a valid JSON value.
func scalarOf(v []byte) jsonScalar {
	if len(v) == 0 {
		return jsonScalar{}
	}
	switch c := v[0]; {
	case c == '"':
		end, escaped := scanString(v, 0)
		if !escaped && utf8.Valid(v[1:end-1]) {
			return jsonScalar{kind: jsonString, str: v[1 : end-1]}
		}
		var s string
		if json.Unmarshal(v[:end], &s) != nil {
			return jsonScalar{}
		}
		return jsonScalar{kind: jsonString, str: []byte(s)}
	case c == 't':
		return jsonScalar{kind: jsonBool, b: true}
	case c == 'f':
		return jsonScalar{kind: jsonBool}
	case c == 'n':
		return jsonScalar{kind: jsonNull}
	case c == '-' || c >= '0' && c <= '9':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil {
			// Out of float64 range: encoding/json refuses to decode
			// it, and so it equals nothing.
			return jsonScalar{}
		}
		return jsonScalar{kind: jsonNumber, num: f}
	}
	return jsonScalar{}
}

func skipWS(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// scanString returns the index after the string starting at b[i] (a
// quote) and whether it holds escapes.
func scanString(b []byte, i int) (end int, escaped bool) {
	for j := i + 1; j < len(b); j++ {
		switch b[j] {
		case '\\':
			escaped = true
			j++
		case '"':
			return j + 1, escaped
		}
	}
	return len(b), escaped
}

// skipValue returns the index after the valid JSON value starting at b[i].
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		end, _ := scanString(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = scanString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	// A number or a literal: up to the next delimiter.
	if j := bytes.IndexAny(b[i:], ",}] \t\n\r"); j >= 0 {
		return i + j
	}
	return len(b)
}
