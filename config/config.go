// Package config is the one configuration loader of every command of the
// module: flags over environment over file over defaults.
//
// koanf (github.com/knadh/koanf/v2) reads the sources: its file provider
// with a strict JSON parser, and its environment provider. The typed
// decoding (keys from json tags, durations, enumerations, lists, maps,
// errors naming the key) is internal/confvalue's, because koanf's
// mapstructure decoding cannot keep it (see that package).
//
// The caller fills a struct with its defaults (each section a component's
// Config with json tags), binds the flags it offers, and loads:
//
//	cfg := struct {
//		Retry    policy.Config   `json:"retry"`
//		Executor executor.Config `json:"executor"`
//	}{Retry: policy.DefaultConfig()} // executor.Config's zero value means its defaults
//	l := config.New(&cfg, "JRETRY")
//	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
//	l.FileFlag(fs, "config", "configuration file (JSON)")
//	l.Flag(fs, "lease", "executor.lease", "claim lease")
//	if err := fs.Parse(args); err != nil { ... }
//	if err := l.Load(); err != nil { ... } // exit status 2
//
// Load applies, in order, each overriding the one before:
//
//  1. the file (Loader.File, or the file flag), JSON. Its keys are the
//     struct's json tags, case-sensitive; an unknown key anywhere is an
//     error naming its dotted path ("retry.maxRetrys"). Sections are JSON
//     objects; a key left out keeps its default; a list replaces the
//     default list; a map's entries are merged into the default map.
//  2. the environment: each value's dotted path, every camelCase word
//     upper-cased and separated by "_", dots becoming "_", after the
//     prefix: retry.maxRetries is JRETRY_RETRY_MAX_RETRIES,
//     executor.sweepSpec is JRETRY_EXECUTOR_SWEEP_SPEC (see
//     [EnvName]; [Loader.Keys] lists them all). Variables that name no key
//     are ignored, so commands with different sections share one
//     environment; [Loader.UnknownEnv] lists them for a program that
//     refuses typos (the demo does).
//  3. the flags explicitly set on the command line, each bound to a dotted
//     path by [Loader.Flag].
//
// Then the struct is validated: a struct (the whole or a section) with a
// Validate() error method is validated by it, one without has each of its
// sections validated. Each error (each one a go-multierror error combines) is reported as
// "invalid configuration: " plus the section's path and the error, so a
// Validate that starts its errors with the field's JSON key gives dotted
// paths: "invalid configuration: retry.maxDelayMs: ...".
//
// Values, the same in the three sources (one parser serves all):
//
//   - strings, bools (strconv.ParseBool), integers and floats (decimal,
//     range-checked, finite); in the file, a JSON string, bool or number;
//   - time.Duration: a Go duration ("30s", "1m30s") or an integer number of
//     milliseconds ("1500", or the JSON number 1500);
//   - types implementing encoding.TextUnmarshaler (time.Time, enumerations
//     such as policy.Jitter): their text; in the file, a JSON string;
//   - lists: in the file a JSON array; in the environment and flags a
//     comma-separated list ("a,b", spaces around items trimmed, "" is
//     empty), or a JSON array when the value starts with "[" (for items
//     containing commas);
//   - maps with string keys: in the file a JSON object; in the environment
//     and flags "key=value,key2=value2", or a JSON object when the value
//     starts with "{". Entries are merged into the existing map.
//
// Errors name the source and the key, flag or variable: "config file
// x.json: retry.maxDelayMs: ...", "environment JRETRY_RETRY_MAX_RETRIES:
// ...", "flag --lease: ...". A validation error of a value a source set
// names that source too, since the key alone does not tell the user where
// to fix it: "invalid configuration: retry.maxRetries: ... (environment
// JRETRY_RETRY_MAX_RETRIES)", "(flag --max-retries)", "(config file
// x.json)". Load never panics on bad input and changes nothing in the
// destination unless it succeeds.
package config

import (
	"errors"
	"flag"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/agnivade/levenshtein"
	koanfenv "github.com/knadh/koanf/providers/env/v2"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/internal/confvalue"
)

// Loader loads one configuration struct from a file, the environment and
// flags. Set its exported fields before Load.
type Loader struct {
	// EnvPrefix starts every variable name ("JRETRY"); empty reads
	// variables without a prefix.
	EnvPrefix string
	// LookupEnv reads a variable; nil means os.LookupEnv. Tests inject a
	// map.
	LookupEnv func(name string) (string, bool)
	// File is the configuration file; empty means none. [Loader.FileFlag]
	// sets it from the command line.
	File string

	dst   any
	flags []*flagValue
}

// New returns a Loader for dst, a pointer to a struct already filled with
// the defaults.
func New(dst any, envPrefix string) *Loader {
	return &Loader{EnvPrefix: envPrefix, dst: dst}
}

// target returns the struct dst points to.
func (l *Loader) target() (reflect.Value, error) {
	v := reflect.ValueOf(l.dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}, fmt.Errorf("config: destination %T is not a non-nil pointer to a struct", l.dst)
	}
	return v.Elem(), nil
}

// FileFlag defines the flag (usually "config") that names the file.
func (l *Loader) FileFlag(fs *flag.FlagSet, name, usage string) {
	fs.Func(name, usage, func(s string) error {
		if s == "" {
			return errors.New("empty file name")
		}
		l.File = s
		return nil
	})
}

// Flag defines flag name on fs, bound to the value at the dotted path key.
// A flag that is set overrides the file and the environment; one that is
// not set changes nothing. Its usage shows the current (default) value. A
// key that names no value is reported by Load.
func (l *Loader) Flag(fs *flag.FlagSet, name, key, usage string) {
	fv := &flagValue{name: name, key: key}
	if root, err := l.target(); err == nil {
		if v, err := confvalue.Lookup(root, key); err == nil {
			fv.isBool = v.Kind() == reflect.Bool
			if !v.IsZero() {
				fv.def = confvalue.Format(v)
			}
		}
	}
	l.flags = append(l.flags, fv)
	fs.Var(fv, name, usage)
}

// flagValue records a bound flag's text; Load parses it.
type flagValue struct {
	name, key string
	raw, def  string
	set       bool
	isBool    bool
}

func (f *flagValue) String() string {
	if f.set {
		return f.raw
	}
	return f.def
}

func (f *flagValue) Set(s string) error {
	f.raw, f.set = s, true
	return nil
}

// IsBoolFlag lets a bool flag be given without a value (--verbose).
func (f *flagValue) IsBoolFlag() bool { return f.isBool }

// Load applies the file, the environment and the set flags to the
// destination, then validates it. On error the destination is unchanged.
//
// koanf reads the file (its file provider, with the strict JSON parser of
// internal/confvalue) and the environment (its env provider) each into its
// own instance; confvalue applies them, then the flags, in that order, so
// that each error names its source and a list or map is typed by the
// field it sets.
func (l *Loader) Load() error {
	root, err := l.target()
	if err != nil {
		return err
	}
	// Work on a copy: maps are cloned before they are written and lists
	// replaced, never modified in place, so the destination's own maps
	// and slices are never touched.
	work := reflect.New(root.Type()).Elem()
	work.Set(root)

	for _, f := range l.flags {
		if _, err := confvalue.Lookup(work, f.key); err != nil {
			return fmt.Errorf("flag --%s: %w", f.name, err)
		}
	}
	// src maps each key a source set to that source, the last one
	// applied winning, so that a validation error can name where the bad
	// value came from.
	src := map[string]string{}
	if l.File != "" {
		if err := loadFile(work, l.File, src); err != nil {
			return err
		}
	}
	if err := l.loadEnv(work, src); err != nil {
		return err
	}
	if err := l.loadFlags(work, src); err != nil {
		return err
	}
	if errs := validate(work, ""); len(errs) > 0 {
		out := make([]error, len(errs))
		for i, e := range errs {
			out[i] = e.err
			if s := sourceOf(src, e.key); s != "" {
				out[i] = fmt.Errorf("%w (%s)", e.err, s)
			}
		}
		return combine.Errors(out...)
	}
	root.Set(work)
	return nil
}

// loadFile applies the file at path to work and records the keys it sets
// in src.
func loadFile(work reflect.Value, path string, src map[string]string) error {
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), confvalue.Parser{}); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	doc := k.Raw()
	if err := confvalue.SetJSON(work, doc, ""); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	docKeys(doc, "", func(key string) { src[key] = "config file " + path })
	return nil
}

// loadFlags applies the flags set on the command line to work and records
// the keys they set in src.
func (l *Loader) loadFlags(work reflect.Value, src map[string]string) error {
	for _, f := range l.flags {
		if !f.set {
			continue
		}
		v, _ := confvalue.Lookup(work, f.key) // checked by Load
		if err := confvalue.SetText(v, f.raw); err != nil {
			return fmt.Errorf("flag --%s: %w", f.name, err)
		}
		src[f.key] = "flag --" + f.name
	}
	return nil
}

// docKeys calls fn with the dotted path of every value of a decoded JSON
// document that is not an object: the keys it sets (a list or a map entry
// as a whole).
func docKeys(doc any, path string, fn func(key string)) {
	obj, ok := doc.(map[string]any)
	if !ok {
		fn(path)
		return
	}
	for k, v := range obj {
		docKeys(v, confvalue.Join(path, k), fn)
	}
}

// sourceOf returns the source that set the key a validation error names,
// or "" for a default. The error may name a value inside what a source set
// (a list item "retryableErrors[0]", a map entry "routes.x"): the longest
// key that is the named one or contains it wins.
func sourceOf(src map[string]string, key string) string {
	key = indexRE.ReplaceAllString(key, "")
	for k := key; k != ""; {
		if s, ok := src[k]; ok {
			return s
		}
		i := strings.LastIndexByte(k, '.')
		if i < 0 {
			break
		}
		k = k[:i]
	}
	return ""
}

// indexRE matches the list indexes of a key ("[0]").
var indexRE = regexp.MustCompile(`\[\d+\]`)

// Key describes one value the configuration holds.
type Key struct {
	// Path is the dotted path, the file's nesting ("retry.maxRetries").
	Path string
	// Env is the environment variable that sets it.
	Env string
	// Value is what the destination holds (before Load: its defaults), as
	// JSON, a duration as a Go duration string.
	Value string
}

// Keys lists every value of the destination in field order, for help
// texts.
func (l *Loader) Keys() []Key {
	root, err := l.target()
	if err != nil {
		return nil
	}
	var keys []Key
	confvalue.WalkLeaves(root.Type(), "", func(path string, index []int) {
		keys = append(keys, Key{Path: path, Env: EnvName(l.EnvPrefix, path), Value: confvalue.Show(root.FieldByIndex(index))})
	})
	return keys
}

// SuggestEnv returns the variable of a key whose name is closest to name,
// a variable that names none (at most 3 edits away), or "".
func (l *Loader) SuggestEnv(name string) string {
	best, bestDist := "", 4
	for _, k := range l.Keys() {
		if d := levenshtein.ComputeDistance(k.Env, name); d < bestDist {
			best, bestDist = k.Env, d
		}
	}
	return best
}

// loadEnv applies the environment to work and records the keys it sets in
// src.
func (l *Loader) loadEnv(work reflect.Value, src map[string]string) error {
	type leaf struct {
		path, name string
		index      []int
	}
	var leaves []leaf
	pathOf := map[string]string{}
	var err error
	confvalue.WalkLeaves(work.Type(), "", func(path string, index []int) {
		name := EnvName(l.EnvPrefix, path)
		if other, dup := pathOf[name]; dup && err == nil {
			err = fmt.Errorf("environment %s: names both %s and %s", name, other, path)
		}
		pathOf[name] = path
		leaves = append(leaves, leaf{path, name, index})
	})
	if err != nil {
		return err
	}
	opt := koanfenv.Opt{
		// A variable's key is found by name, not by splitting it: "_"
		// separates the words of a camelCase key as well as its sections.
		TransformFunc: func(name, value string) (string, any) { return pathOf[name], value },
	}
	if l.EnvPrefix != "" {
		opt.Prefix = l.EnvPrefix + "_"
	}
	if l.LookupEnv != nil {
		opt.EnvironFunc = func() []string {
			var environ []string
			for _, lf := range leaves {
				if v, ok := l.LookupEnv(lf.name); ok {
					environ = append(environ, lf.name+"="+v)
				}
			}
			return environ
		}
	}
	k := koanf.New(".")
	if err := k.Load(koanfenv.Provider(".", opt), nil); err != nil {
		return fmt.Errorf("environment: %w", err)
	}
	set := k.All()
	for _, lf := range leaves {
		s, ok := set[lf.path].(string)
		if !ok {
			continue
		}
		if err := confvalue.SetText(work.FieldByIndex(lf.index), s); err != nil {
			return fmt.Errorf("environment %s: %w", lf.name, err)
		}
		src[lf.path] = "environment " + lf.name
	}
	return nil
}

// UnknownEnv returns the names, in environ's order, of the variables of
// environ ("NAME=value" entries, as os.Environ gives them) that carry the
// loader's prefix but name no key: most likely a typo, which Load ignores
// (other programs may share the prefix with other sections). A program
// whose every command reads the same struct can refuse them, as an
// unknown key in a file is refused.
func (l *Loader) UnknownEnv(environ []string) ([]string, error) {
	root, err := l.target()
	if err != nil || l.EnvPrefix == "" { // without a prefix every variable would be unknown
		return nil, err
	}
	known := map[string]bool{}
	confvalue.WalkLeaves(root.Type(), "", func(path string, _ []int) { known[EnvName(l.EnvPrefix, path)] = true })
	prefix := l.EnvPrefix + "_"
	var unknown []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, prefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	return unknown, nil
}

// EnvName returns the environment variable of the dotted path key: prefix,
// then each path element with its camelCase words upper-cased and joined
// by "_" ("retry.maxDelayMs" with prefix "JRETRY" is
// JRETRY_RETRY_MAX_DELAY_MS). Characters other than ASCII letters and
// digits become "_".
func EnvName(prefix, key string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, part := range strings.Split(key, ".") {
		if b.Len() > 0 {
			b.WriteByte('_')
		}
		for i := 0; i < len(part); i++ {
			c := part[i]
			switch {
			case c >= 'A' && c <= 'Z':
				// A word starts at an upper-case letter after a lower-case
				// letter or digit ("maxDelay"), or before a lower-case one
				// after another upper-case ("URLPath": URL_PATH).
				if i > 0 && (isLowerOrDigit(part[i-1]) || (isUpper(part[i-1]) && i+1 < len(part) && part[i+1] >= 'a' && part[i+1] <= 'z')) {
					b.WriteByte('_')
				}
				b.WriteByte(c)
			case c >= 'a' && c <= 'z':
				b.WriteByte(c - 'a' + 'A')
			case c >= '0' && c <= '9':
				b.WriteByte(c)
			default:
				b.WriteByte('_')
			}
		}
	}
	return b.String()
}

func isUpper(c byte) bool        { return c >= 'A' && c <= 'Z' }
func isLowerOrDigit(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validator is a section that checks itself.
type validator interface{ Validate() error }

// invalidValue is one validation error and the dotted key it names.
type invalidValue struct {
	key string
	err error
}

// validate calls Validate on v if it has one, else on its sections, and
// prefixes each error with the section's path.
func validate(v reflect.Value, path string) []invalidValue {
	if val, ok := v.Addr().Interface().(validator); ok {
		err := val.Validate()
		if err == nil {
			return nil
		}
		errs := []error{err}
		switch j := err.(type) {
		case interface{ WrappedErrors() []error }: // go-multierror
			errs = j.WrappedErrors()
		case interface{ Unwrap() []error }:
			errs = j.Unwrap()
		}
		out := make([]invalidValue, len(errs))
		for i, e := range errs {
			// By convention the error starts with the field's JSON key.
			key, _, _ := strings.Cut(e.Error(), ":")
			key, _, _ = strings.Cut(key, " ")
			if path == "" {
				out[i] = invalidValue{key, fmt.Errorf("invalid configuration: %w", e)}
			} else {
				out[i] = invalidValue{confvalue.Join(path, key), fmt.Errorf("invalid configuration: %s.%w", path, e)}
			}
		}
		return out
	}
	for _, f := range confvalue.Fields(v.Type()) {
		if confvalue.IsSection(f.Type) {
			if errs := validate(v.FieldByIndex(f.Index), confvalue.Join(path, f.Name)); len(errs) > 0 {
				return errs
			}
		}
	}
	return nil
}
