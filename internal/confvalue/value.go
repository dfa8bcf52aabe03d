package confvalue

import (
	"encoding"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/agnivade/levenshtein"
	"maps"
	"math"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

var (
	durationType        = reflect.TypeFor[time.Duration]()
	textUnmarshalerType = reflect.TypeFor[encoding.TextUnmarshaler]()
	textMarshalerType   = reflect.TypeFor[encoding.TextMarshaler]()
)

// Field is a configurable struct field: exported, not tagged json:"-",
// with fields of untagged embedded structs inlined as encoding/json does.
type Field struct {
	Name  string       // its key: the json tag's name, else the Go name
	Index []int        // for reflect.Value.FieldByIndex
	Type  reflect.Type // its Go type
}

// Fields lists the configurable fields of the struct type t.
func Fields(t reflect.Type) []Field {
	var direct, inlined []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if sf.Anonymous && name == "" && sf.Type.Kind() == reflect.Struct {
			for _, f := range Fields(sf.Type) {
				f.Index = append([]int{i}, f.Index...)
				inlined = append(inlined, f)
			}
			continue
		}
		if !sf.IsExported() {
			continue
		}
		direct = append(direct, Field{Name: cmpOr(name, sf.Name), Index: []int{i}, Type: sf.Type})
	}
	// As in encoding/json, a direct field hides an inlined one of the same
	// name.
	for _, f := range inlined {
		if !slices.ContainsFunc(direct, func(d Field) bool { return d.Name == f.Name }) {
			direct = append(direct, f)
		}
	}
	return direct
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// IsSection reports whether t is a nested section (a struct that does not
// parse from text) rather than a value.
func IsSection(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(textUnmarshalerType)
}

// WalkLeaves calls fn with the path and index of every value under t.
func WalkLeaves(t reflect.Type, path string, fn func(path string, index []int)) {
	for _, f := range Fields(t) {
		p := Join(path, f.Name)
		if IsSection(f.Type) {
			WalkLeaves(f.Type, p, func(sub string, idx []int) {
				fn(sub, append(slices.Clone(f.Index), idx...))
			})
			continue
		}
		fn(p, f.Index)
	}
}

func Join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// Lookup returns the value at the dotted path key under the struct v.
func Lookup(v reflect.Value, key string) (reflect.Value, error) {
	for part := range strings.SplitSeq(key, ".") {
		if !IsSection(v.Type()) {
			return reflect.Value{}, fmt.Errorf("unknown key %q", key)
		}
		f, ok := fieldNamed(v.Type(), part)
		if !ok {
			return reflect.Value{}, fmt.Errorf("unknown key %q", key)
		}
		v = v.FieldByIndex(f.Index)
	}
	if IsSection(v.Type()) {
		return reflect.Value{}, fmt.Errorf("key %q is a section, not a value", key)
	}
	return v, nil
}

func fieldNamed(t reflect.Type, name string) (Field, bool) {
	for _, f := range Fields(t) {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// unknownKey reports a key that names no Field, suggesting the Field it
// probably meant (same letters ignoring case, "_" and "-").
func unknownKey(t reflect.Type, path string) error {
	dir, name := "", path
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		dir, name = path[:i], path[i+1:]
	}
	best, bestDist := "", 3 // suggest at most 2 edits away
	for _, f := range Fields(t) {
		if d := levenshtein.ComputeDistance(fold(f.Name), fold(name)); d < bestDist {
			best, bestDist = f.Name, d
		}
	}
	if best != "" {
		return fmt.Errorf("%s: unknown key (did you mean %s?)", path, Join(dir, best))
	}
	return fmt.Errorf("%s: unknown key", path)
}

func fold(s string) string {
	return strings.ToLower(strings.NewReplacer("_", "", "-", "").Replace(s))
}

// SetJSON stores the decoded JSON value j (from DecodeJSON) in v.
func SetJSON(v reflect.Value, j any, path string) error {
	t := v.Type()
	if IsSection(t) {
		obj, ok := j.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a JSON object, got %s", pathOr(path), describe(j))
		}
		for _, k := range slices.Sorted(maps.Keys(obj)) {
			p := Join(path, k)
			f, ok := fieldNamed(t, k)
			if !ok {
				return unknownKey(t, p)
			}
			if err := SetJSON(v.FieldByIndex(f.Index), obj[k], p); err != nil {
				return err
			}
		}
		return nil
	}
	if isText(t) {
		s, ok := j.(string)
		if !ok {
			return fmt.Errorf("%s: want a JSON string, got %s", path, describe(j))
		}
		return prefix(path, setScalar(v, s))
	}
	switch t.Kind() {
	case reflect.Slice:
		arr, ok := j.([]any)
		if !ok {
			return fmt.Errorf("%s: want a JSON array, got %s", path, describe(j))
		}
		s := reflect.MakeSlice(t, len(arr), len(arr))
		for i, e := range arr {
			if err := SetJSON(s.Index(i), e, fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		obj, ok := j.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: want a JSON object, got %s", path, describe(j))
		}
		return setMap(v, slices.Sorted(maps.Keys(obj)), func(k string, e reflect.Value) error {
			return SetJSON(e, obj[k], Join(path, k))
		}, path)
	case reflect.String:
		s, ok := j.(string)
		if !ok {
			return fmt.Errorf("%s: want a JSON string, got %s", path, describe(j))
		}
		v.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := j.(bool)
		if !ok {
			return fmt.Errorf("%s: want true or false, got %s", path, describe(j))
		}
		v.SetBool(b)
		return nil
	}
	if !isNumber(t.Kind()) {
		return fmt.Errorf("%s: unsupported type %s", path, t)
	}
	// Numbers, and durations as a number of milliseconds or a string.
	switch j := j.(type) {
	case json.Number:
		return prefix(path, setScalar(v, j.String()))
	case string:
		if t == durationType {
			return prefix(path, setScalar(v, j))
		}
	}
	return fmt.Errorf("%s: want a number, got %s", path, describe(j))
}

func isNumber(k reflect.Kind) bool {
	return k >= reflect.Int && k <= reflect.Uint64 && k != reflect.Uintptr || k == reflect.Float32 || k == reflect.Float64
}

func pathOr(path string) string { return cmpOr(path, "top level") }

func prefix(path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s: %w", path, err)
}

// describe names a decoded JSON value's type for an error message.
func describe(j any) string {
	switch j := j.(type) {
	case nil:
		return "null"
	case string:
		return fmt.Sprintf("string %q", j)
	case json.Number:
		return "number " + j.String()
	case bool:
		return fmt.Sprintf("%t", j)
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", j)
}

// isText reports whether values of t parse from text.
func isText(t reflect.Type) bool { return reflect.PointerTo(t).Implements(textUnmarshalerType) }

// setMap merges entries into the map v: a clone of it, so that the map the
// caller's defaults share is never written. set fills each new value.
func setMap(v reflect.Value, keys []string, set func(k string, e reflect.Value) error, path string) error {
	t := v.Type()
	if t.Key().Kind() != reflect.String {
		return fmt.Errorf("%s: unsupported map key type %s", pathOr(path), t.Key())
	}
	m := reflect.MakeMapWithSize(t, v.Len()+len(keys))
	iter := v.MapRange()
	for iter.Next() {
		m.SetMapIndex(iter.Key(), iter.Value())
	}
	for _, k := range keys {
		e := reflect.New(t.Elem()).Elem()
		if err := set(k, e); err != nil {
			return err
		}
		m.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
	}
	v.Set(m)
	return nil
}

// SetText parses s, from the environment or a flag, into v.
func SetText(v reflect.Value, s string) error {
	t := v.Type()
	switch {
	case isText(t) || IsSection(t):
		return setScalar(v, s)
	case t.Kind() == reflect.Slice:
		if strings.HasPrefix(strings.TrimSpace(s), "[") {
			j, err := DecodeJSON([]byte(s))
			if err != nil {
				return err
			}
			return SetJSON(v, j, "")
		}
		var items []string
		if strings.TrimSpace(s) != "" {
			items = strings.Split(s, ",")
		}
		sl := reflect.MakeSlice(t, len(items), len(items))
		for i, item := range items {
			if err := setScalar(sl.Index(i), strings.TrimSpace(item)); err != nil {
				return fmt.Errorf("item %d: %w", i, err)
			}
		}
		v.Set(sl)
		return nil
	case t.Kind() == reflect.Map:
		if strings.HasPrefix(strings.TrimSpace(s), "{") {
			j, err := DecodeJSON([]byte(s))
			if err != nil {
				return err
			}
			return SetJSON(v, j, "")
		}
		vals := map[string]string{}
		var keys []string
		for pair := range strings.SplitSeq(s, ",") {
			if strings.TrimSpace(pair) == "" {
				continue
			}
			k, val, ok := strings.Cut(pair, "=")
			k = strings.TrimSpace(k)
			if !ok || k == "" {
				return fmt.Errorf("map entry %q: want key=value", pair)
			}
			if _, dup := vals[k]; dup {
				return fmt.Errorf("map key %q given twice", k)
			}
			vals[k] = strings.TrimSpace(val)
			keys = append(keys, k)
		}
		return setMap(v, keys, func(k string, e reflect.Value) error {
			return prefix(k, setScalar(e, vals[k]))
		}, "")
	}
	return setScalar(v, s)
}

// setScalar is the leaf parser every source shares: it parses the text of
// one value (a string, number, bool, duration or TextUnmarshaler) into v.
func setScalar(v reflect.Value, s string) error {
	t := v.Type()
	if isText(t) {
		if err := v.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			return fmt.Errorf("invalid value %q: %w", s, err)
		}
		return nil
	}
	if t == durationType {
		d, err := parseDuration(s)
		if err != nil {
			return err
		}
		v.SetInt(int64(d))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("invalid boolean %q (want true or false)", s)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, t.Bits())
		if err != nil {
			return numErr("integer", s, err)
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, t.Bits())
		if err != nil {
			return numErr("non-negative integer", s, err)
		}
		v.SetUint(n)
	case reflect.Float32, reflect.Float64:
		f, err := strconv.ParseFloat(s, t.Bits())
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("invalid number %q (want a finite decimal number)", s)
		}
		v.SetFloat(f)
	case reflect.Struct:
		return errors.New("a section, not a value")
	default:
		return fmt.Errorf("unsupported type %s", t)
	}
	return nil
}

func numErr(what, s string, err error) error {
	if errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("%s %q out of range", what, s)
	}
	return fmt.Errorf("invalid %s %q", what, s)
}

// parseDuration reads a Go duration ("30s") or an integer number of
// milliseconds ("1500"), rejecting what does not fit a time.Duration.
func parseDuration(s string) (time.Duration, error) {
	if ms, err := strconv.ParseInt(s, 10, 64); err == nil {
		if ms > math.MaxInt64/int64(time.Millisecond) || ms < math.MinInt64/int64(time.Millisecond) {
			return 0, fmt.Errorf("duration %q ms out of range", s)
		}
		return time.Duration(ms) * time.Millisecond, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q (want a Go duration like 30s or integer milliseconds)", s)
	}
	return d, nil
}

// Format renders a value as its flag's default.
func Format(v reflect.Value) string {
	if v.Type().Implements(textMarshalerType) {
		if b, err := v.Interface().(encoding.TextMarshaler).MarshalText(); err == nil {
			return string(b)
		}
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = Format(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Map:
		parts := make([]string, 0, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			parts = append(parts, fmt.Sprint(iter.Key().Interface())+"="+Format(iter.Value()))
		}
		slices.Sort(parts)
		return strings.Join(parts, ",")
	}
	return fmt.Sprint(v.Interface())
}

// Show formats a value for a listing: as JSON, a duration as a Go
// duration string.
func Show(v reflect.Value) string {
	if d, ok := v.Interface().(time.Duration); ok {
		return d.String()
	}
	b, err := json.Marshal(v.Interface())
	if err != nil {
		return fmt.Sprint(v.Interface())
	}
	return string(b)
}
