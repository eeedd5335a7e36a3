package channel

import (
	"net/url"
	"strconv"
	"strings"
)

// decodeParams decodes a query string the way Plug does: "a[b]=1" nests
// maps, "a[]=1&a[]=2" makes a list, numeric keys stay map keys ("0"),
// values are strings, and a repeated key keeps its last value.
func decodeParams(rawQuery string) map[string]any {
	params := map[string]any{}
	for _, pair := range strings.Split(rawQuery, "&") {
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			continue
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			continue
		}
		putParam(params, splitKey(key), val)
	}
	return params
}

// splitKey splits "user[tags][0]" into ["user", "tags", "0"]; "a[]" ends in "".
func splitKey(key string) []string {
	i := strings.IndexByte(key, '[')
	if i <= 0 {
		return []string{key}
	}
	parts := []string{key[:i]}
	rest := key[i:]
	for len(rest) > 0 && rest[0] == '[' {
		j := strings.IndexByte(rest, ']')
		if j < 0 {
			break
		}
		parts = append(parts, rest[1:j])
		rest = rest[j+1:]
	}
	return parts
}

func putParam(m map[string]any, path []string, val string) {
	key := path[0]
	if len(path) == 1 {
		m[key] = val
		return
	}
	if path[1] == "" {
		list, _ := m[key].([]any)
		m[key] = append(list, val)
		return
	}
	sub, ok := m[key].(map[string]any)
	if !ok {
		sub = map[string]any{}
		m[key] = sub
	}
	putParam(sub, path[1:], val)
}

// negotiateSerializer maps the vsn param to a serializer as Phoenix does:
// absent → V1, "~> 1.0.0" → V1, "~> 2.0.0" → V2, anything else refused.
func negotiateSerializer(params map[string]any) (Serializer, bool) {
	raw, present := params["vsn"]
	if !present {
		return V1, true
	}
	vsn, ok := raw.(string)
	if !ok {
		return 0, false
	}
	major, minor, ok := parseSemver(vsn)
	if !ok {
		return 0, false
	}
	switch {
	case major == 1 && minor == 0:
		return V1, true
	case major == 2 && minor == 0:
		return V2, true
	}
	return 0, false
}

// parseSemver accepts MAJOR.MINOR.PATCH with optional -pre and +build parts
// and returns major and minor. A pre-release of x.y.0 sorts before x.y.0
// and so does not match "~> x.y.0".
func parseSemver(v string) (major, minor int, ok bool) {
	core := v
	pre := false
	if i := strings.IndexByte(core, '+'); i >= 0 {
		core = core[:i]
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		core, pre = core[:i], true
	}
	parts := strings.Split(core, ".")
	if len(parts) != 3 {
		return 0, 0, false
	}
	var n [3]int
	for i, p := range parts {
		if p == "" || (len(p) > 1 && p[0] == '0') {
			return 0, 0, false
		}
		x, err := strconv.Atoi(p)
		if err != nil || x < 0 {
			return 0, 0, false
		}
		n[i] = x
	}
	if pre && n[2] == 0 {
		return 0, 0, false
	}
	return n[0], n[1], true
}
