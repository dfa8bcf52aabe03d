package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/journeyretry/journeyretry/internal/combine"
	"github.com/journeyretry/journeyretry/internal/confvalue"
)

// level is an enumeration parsed from text, like policy.Jitter.
type level string

func (l *level) UnmarshalText(b []byte) error {
	switch s := string(b); s {
	case "low", "high":
		*l = level(s)
		return nil
	}
	return errors.New("want low or high")
}

type inner struct {
	Depth int     `json:"depth"`
	Ratio float64 `json:"ratio"`
}

// Embedded is inlined, as encoding/json does.
type Embedded struct {
	Shared string `json:"shared"`
}

type section struct {
	Name    string            `json:"name"`
	Count   int               `json:"count"`
	Small   int8              `json:"small"`
	Size    uint16            `json:"size"`
	On      bool              `json:"on"`
	Timeout time.Duration     `json:"timeout"`
	Tags    []string          `json:"tags"`
	Labels  map[string]string `json:"labels"`
	Level   level             `json:"level"`
	At      time.Time         `json:"at"`
	Inner   inner             `json:"inner"`
	Ints    []int             `json:"ints"`
	Embedded
	BaseURL string `json:"baseURL"`
	NoTag   int
	Skipped func() `json:"-"`
	private int
}

type testConfig struct {
	App  section `json:"app"`
	Mode string  `json:"mode"`
}

func defaults() testConfig {
	return testConfig{
		App: section{
			Name: "demo", Count: 1, Timeout: 30 * time.Second, Tags: []string{"a"},
			Labels: map[string]string{"team": "core"}, Level: "low", Inner: inner{Depth: 2, Ratio: 0.5},
		},
		Mode: "off",
	}
}

type env map[string]string

func (e env) lookup(name string) (string, bool) { v, ok := e[name]; return v, ok }

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// load runs a Loader over defaults() with the given file content (none if
// empty), environment and command line, binding a few flags.
func load(t *testing.T, file string, e env, args ...string) (testConfig, error) {
	t.Helper()
	cfg := defaults()
	l := New(&cfg, "T")
	l.LookupEnv = e.lookup
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	l.FileFlag(fs, "config", "file")
	l.Flag(fs, "count", "app.count", "count")
	l.Flag(fs, "timeout", "app.timeout", "timeout")
	l.Flag(fs, "on", "app.on", "on")
	l.Flag(fs, "tags", "app.tags", "tags")
	l.Flag(fs, "labels", "app.labels", "labels")
	l.Flag(fs, "depth", "app.inner.depth", "depth")
	l.Flag(fs, "level", "app.level", "level")
	if file != "" {
		args = append([]string{"--config", writeFile(t, file)}, args...)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	err := l.Load()
	return cfg, err
}

func TestPrecedence(t *testing.T) {
	file := `{"app": {"count": 2, "name": "from-file", "timeout": 1500, "inner": {"depth": 3}, "tags": ["x", "y"]}, "mode": "full"}`
	for _, tc := range []struct {
		name string
		file string
		env  env
		args []string
		want func(*testConfig)
	}{
		{"defaults", "", nil, nil, func(*testConfig) {}},
		{"file over defaults", file, nil, nil, func(c *testConfig) {
			c.App.Count, c.App.Name, c.App.Timeout, c.App.Inner.Depth, c.App.Tags, c.Mode = 2, "from-file", 1500*time.Millisecond, 3, []string{"x", "y"}, "full"
		}},
		{"env over file", file, env{"T_APP_COUNT": "5", "T_APP_INNER_DEPTH": "9", "T_MODE": "shadow", "T_APP_TIMEOUT": "2m"}, nil, func(c *testConfig) {
			c.App.Count, c.App.Name, c.App.Timeout, c.App.Inner.Depth, c.App.Tags, c.Mode = 5, "from-file", 2*time.Minute, 9, []string{"x", "y"}, "shadow"
		}},
		{"flags over env", file, env{"T_APP_COUNT": "5", "T_APP_TIMEOUT": "2m"}, []string{"--count", "7", "--timeout=45s", "--on", "--depth", "11"}, func(c *testConfig) {
			c.App.Count, c.App.Name, c.App.Timeout, c.App.Inner.Depth, c.App.Tags, c.Mode, c.App.On = 7, "from-file", 45*time.Second, 11, []string{"x", "y"}, "full", true
		}},
		{"unset flags change nothing", "", env{"T_APP_COUNT": "5"}, nil, func(c *testConfig) { c.App.Count = 5 }},
		{"flag set to the default still wins", "", env{"T_APP_COUNT": "5"}, []string{"--count=1"}, func(c *testConfig) {}},
		{"every kind from env", "", env{
			"T_APP_NAME": "n", "T_APP_SMALL": "-128", "T_APP_SIZE": "65535", "T_APP_ON": "true", "T_APP_TAGS": " p , q ",
			"T_APP_LABELS": "env=prod, team=ops", "T_APP_LEVEL": "high", "T_APP_AT": "2026-01-02T03:04:05Z",
			"T_APP_INNER_RATIO": "1e-3", "T_APP_INTS": "[1, 2]", "T_APP_SHARED": "s", "T_APP_BASE_URL": "http://x", "T_APP_NO_TAG": "4",
		}, nil, func(c *testConfig) {
			c.App.Name, c.App.Small, c.App.Size, c.App.On, c.App.Tags = "n", -128, 65535, true, []string{"p", "q"}
			c.App.Labels = map[string]string{"team": "ops", "env": "prod"}
			c.App.Level, c.App.At, c.App.Inner.Ratio, c.App.Ints = "high", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 1e-3, []int{1, 2}
			c.App.Shared, c.App.BaseURL, c.App.NoTag = "s", "http://x", 4
		}},
		{"every kind from the file", `{"app": {"small": -1, "size": 7, "on": true, "labels": {"env": "dev"}, "level": "high",
			"at": "2026-01-02T03:04:05Z", "inner": {"ratio": 2.5}, "ints": [3], "shared": "f", "NoTag": 8, "timeout": "1m30s", "tags": []}}`,
			nil, nil, func(c *testConfig) {
				c.App.Small, c.App.Size, c.App.On, c.App.Labels = -1, 7, true, map[string]string{"team": "core", "env": "dev"}
				c.App.Level, c.App.At, c.App.Inner.Ratio, c.App.Ints = "high", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), 2.5, []int{3}
				c.App.Shared, c.App.NoTag, c.App.Timeout, c.App.Tags = "f", 8, 90*time.Second, []string{}
			}},
		{"lists and maps from flags", "", nil, []string{"--tags", "", "--labels", `{"a": "1"}`, "--level", "high"}, func(c *testConfig) {
			c.App.Tags, c.App.Labels, c.App.Level = []string{}, map[string]string{"team": "core", "a": "1"}, "high"
		}},
		{"list items with commas as JSON", "", env{"T_APP_TAGS": `["re:a{1,3}", "b"]`}, nil, func(c *testConfig) { c.App.Tags = []string{"re:a{1,3}", "b"} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(t, tc.file, tc.env, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults()
			tc.want(&want)
			got.App.Skipped, want.App.Skipped = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestErrors feeds bad values of each kind through each source: the error
// names the source and the key, flag or variable, and the destination is
// unchanged.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		env        env
		args       []string
		want       string // the error, or its start
	}{
		{"unknown top-level key", `{"verbose": "x"}`, nil, nil, "config file %s: verbose: unknown key"},
		{"unknown key, typo hint", `{"mod": "x"}`, nil, nil, "config file %s: mod: unknown key (did you mean mode?)"},
		{"unknown nested key", `{"app": {"inner": {"width": 1}}}`, nil, nil, "config file %s: app.inner.width: unknown key"},
		{"unknown key, case hint", `{"app": {"inner": {"Depth": 1}}}`, nil, nil, "config file %s: app.inner.Depth: unknown key (did you mean app.inner.depth?)"},
		{"unknown key, snake hint", `{"app": {"base_url": "x"}}`, nil, nil, "config file %s: app.base_url: unknown key (did you mean app.baseURL?)"},
		{"skipped field is unknown", `{"app": {"Skipped": 1}}`, nil, nil, "config file %s: app.Skipped: unknown key"},
		{"private field is unknown", `{"app": {"private": 1}}`, nil, nil, "config file %s: app.private: unknown key"},
		{"int as string in file", `{"app": {"count": "3"}}`, nil, nil, `config file %s: app.count: want a number, got string "3"`},
		{"fraction for int", `{"app": {"count": 1.5}}`, nil, nil, `config file %s: app.count: invalid integer "1.5"`},
		{"int overflow", `{"app": {"small": 300}}`, nil, nil, `config file %s: app.small: integer "300" out of range`},
		{"negative uint", `{"app": {"size": -1}}`, nil, nil, `config file %s: app.size: invalid non-negative integer "-1"`},
		{"bool as string", `{"app": {"on": "yes"}}`, nil, nil, `config file %s: app.on: want true or false, got string "yes"`},
		{"string as number", `{"mode": 3}`, nil, nil, `config file %s: mode: want a JSON string, got number 3`},
		{"null", `{"mode": null}`, nil, nil, `config file %s: mode: want a JSON string, got null`},
		{"section as value", `{"app": 3}`, nil, nil, `config file %s: app: want a JSON object, got number 3`},
		{"top level not an object", `[1]`, nil, nil, `config file %s: top level: want a JSON object, got an array`},
		{"bad duration", `{"app": {"timeout": "soon"}}`, nil, nil, `config file %s: app.timeout: invalid duration "soon"`},
		{"fractional ms duration", `{"app": {"timeout": 1.5}}`, nil, nil, `config file %s: app.timeout: invalid duration "1.5"`},
		{"duration overflow", `{"app": {"timeout": 9223372036854775807}}`, nil, nil, `config file %s: app.timeout: duration "9223372036854775807" ms out of range`},
		{"bad enum", `{"app": {"level": "mid"}}`, nil, nil, `config file %s: app.level: invalid value "mid": want low or high`},
		{"list item", `{"app": {"ints": [1, "x"]}}`, nil, nil, `config file %s: app.ints[1]: want a number, got string "x"`},
		{"map value", `{"app": {"labels": {"a": 1}}}`, nil, nil, `config file %s: app.labels.a: want a JSON string, got number 1`},
		{"syntax error", "{\n\"app\": {\n\"count\": 1,,\n}}", nil, nil, "config file %s: line 3: invalid character ','"},
		{"trailing data", `{} {}`, nil, nil, "config file %s: data after the top-level JSON value"},
		{"empty file", ` `, nil, nil, "config file %s: empty document"},
		{"truncated file", `{"app": {`, nil, nil, "config file %s: unexpected EOF"},
		{"duplicate key", `{"app": {"count": 1, "inner": {}, "count": 2}}`, nil, nil, "config file %s: app.count: key given twice"},
		{"duplicate section", `{"app": {}, "mode": "x", "app": {}}`, nil, nil, "config file %s: app: key given twice"},
		{"too deep", `{"app": {"labels": ` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}}`, nil, nil, "config file %s: document nested deeper than 64 levels"},
		{"bad int in env", "", env{"T_APP_COUNT": "many"}, nil, `environment T_APP_COUNT: invalid integer "many"`},
		{"NaN in env", "", env{"T_APP_INNER_RATIO": "NaN"}, nil, `environment T_APP_INNER_RATIO: invalid number "NaN"`},
		{"bad bool in env", "", env{"T_APP_ON": "yes"}, nil, `environment T_APP_ON: invalid boolean "yes"`},
		{"bad map in env", "", env{"T_APP_LABELS": "a=1,b"}, nil, `environment T_APP_LABELS: map entry "b": want key=value`},
		{"duplicate map key in env", "", env{"T_APP_LABELS": "a=1,a=2"}, nil, `environment T_APP_LABELS: map key "a" given twice`},
		{"bad list item in env", "", env{"T_APP_INTS": "1,,2"}, nil, `environment T_APP_INTS: item 1: invalid integer ""`},
		{"bad JSON list in env", "", env{"T_APP_TAGS": `["a"`}, nil, `environment T_APP_TAGS: unexpected EOF`},
		{"bad time in env", "", env{"T_APP_AT": "yesterday"}, nil, `environment T_APP_AT: invalid value "yesterday"`},
		{"bad duration flag", "", nil, []string{"--timeout", "-"}, `flag --timeout: invalid duration "-"`},
		{"bad enum flag", "", nil, []string{"--level", "HIGH"}, `flag --level: invalid value "HIGH": want low or high`},
		{"bad flag after good env", "", env{"T_APP_COUNT": "5"}, []string{"--count", "x"}, `flag --count: invalid integer "x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load(t, tc.file, tc.env, tc.args...)
			if err == nil {
				t.Fatalf("no error; loaded %+v", got)
			}
			want := tc.want
			if strings.Contains(want, "%s") {
				// The file's path is a temporary one: match around it.
				before, after, _ := strings.Cut(want, "%s")
				if !strings.HasPrefix(err.Error(), before) || !strings.Contains(err.Error(), after) {
					t.Fatalf("error %q, want %q", err, want)
				}
			} else if !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("error %q, want %q", err, want)
			}
			d := defaults()
			got.App.Skipped, d.App.Skipped = nil, nil
			if !reflect.DeepEqual(got, d) {
				t.Errorf("destination changed on error: %+v", got)
			}
		})
	}
}

func TestMissingFile(t *testing.T) {
	cfg := defaults()
	l := New(&cfg, "T")
	l.LookupEnv = env{}.lookup
	l.File = filepath.Join(t.TempDir(), "nope.json")
	err := l.Load()
	if !errors.Is(err, os.ErrNotExist) || !strings.HasPrefix(err.Error(), "config file "+l.File+": ") {
		t.Errorf("Load = %v, want a not-exist error naming the file", err)
	}
}

// TestDefaultsNeverWritten checks that the maps and slices of the defaults
// are not modified in place, even by a successful load: another struct may
// share them.
func TestDefaultsNeverWritten(t *testing.T) {
	shared := map[string]string{"team": "core"}
	tags := []string{"a", "b"}
	cfg := defaults()
	cfg.App.Labels, cfg.App.Tags = shared, tags
	l := New(&cfg, "T")
	l.LookupEnv = env{"T_APP_LABELS": "x=1", "T_APP_TAGS": "c,d"}.lookup
	if err := l.Load(); err != nil {
		t.Fatal(err)
	}
	if len(shared) != 1 || tags[0] != "a" {
		t.Errorf("defaults written in place: %v %v", shared, tags)
	}
	if cfg.App.Labels["x"] != "1" || cfg.App.Labels["team"] != "core" || cfg.App.Tags[0] != "c" {
		t.Errorf("loaded %+v", cfg.App)
	}
}

type validated struct {
	Max int `json:"max"`
	Min int `json:"min"`
}

func (v validated) Validate() error {
	var errs []error
	if v.Max < v.Min {
		errs = append(errs, errors.New("max: below min"))
	}
	if v.Min < 0 {
		errs = append(errs, errors.New("min: negative"))
	}
	return combine.Errors(errs...)
}

func TestValidatesEverySection(t *testing.T) {
	cfg := struct {
		Limits validated `json:"limits"`
		Outer  struct {
			Inner validated `json:"inner"`
		} `json:"outer"`
	}{}
	l := New(&cfg, "T")
	l.LookupEnv = env{"T_OUTER_INNER_MIN": "-1", "T_OUTER_INNER_MAX": "-2"}.lookup
	err := l.Load()
	want := "invalid configuration: outer.inner.max: below min (environment T_OUTER_INNER_MAX)\ninvalid configuration: outer.inner.min: negative (environment T_OUTER_INNER_MIN)"
	if err == nil || err.Error() != want {
		t.Fatalf("Load = %q, want %q", err, want)
	}
	if cfg.Outer.Inner.Min != 0 {
		t.Errorf("destination changed by an invalid load: %+v", cfg)
	}
}

// limits is a section whose Validate names list items and map entries.
type limits struct {
	Max    int            `json:"max"`
	Rules  []string       `json:"rules"`
	Routes map[string]int `json:"routes"`
}

func (l limits) Validate() error {
	var errs []error
	if l.Max < 0 {
		errs = append(errs, errors.New("max: negative"))
	}
	for i, r := range l.Rules {
		if r == "" {
			errs = append(errs, fmt.Errorf("rules[%d]: empty rule", i))
		}
	}
	for k, v := range l.Routes {
		if v < 0 {
			errs = append(errs, fmt.Errorf("routes.%s: negative", k))
		}
	}
	return combine.Errors(errs...)
}

// TestValidationErrorsNameTheSource: a validation error names the file,
// variable or flag that set the bad value (the last one applied), and
// nothing for a bad default.
func TestValidationErrorsNameTheSource(t *testing.T) {
	for _, tc := range []struct {
		name string
		def  limits
		file string
		env  env
		args []string
		want string
	}{
		{name: "file", file: `{"limits": {"max": -1}}`, want: "limits.max: negative (config file "},
		{name: "env", env: env{"T_LIMITS_MAX": "-1"}, want: "limits.max: negative (environment T_LIMITS_MAX)"},
		{name: "flag", args: []string{"--max", "-1"}, want: "limits.max: negative (flag --max)"},
		{name: "flag over env", env: env{"T_LIMITS_MAX": "-2"}, args: []string{"--max", "-1"}, want: "limits.max: negative (flag --max)"},
		{name: "env over file", file: `{"limits": {"max": -2}}`, env: env{"T_LIMITS_MAX": "-1"}, want: "(environment T_LIMITS_MAX)"},
		{name: "list item by flag", args: []string{"--rules", "a,"}, want: "limits.rules[1]: empty rule (flag --rules)"},
		{name: "list item in file", file: `{"limits": {"rules": [""]}}`, want: "limits.rules[0]: empty rule (config file "},
		{name: "map entry by env", env: env{"T_LIMITS_ROUTES": "x=-1"}, want: "limits.routes.x: negative (environment T_LIMITS_ROUTES)"},
		{name: "map entry in file", file: `{"limits": {"routes": {"x": -1}}}`, want: "limits.routes.x: negative (config file "},
		{name: "default", def: limits{Max: -1}, want: "limits.max: negative"},
		{name: "other key set", def: limits{Max: -1}, file: `{"limits": {"rules": ["a"]}}`, want: "limits.max: negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := struct {
				Limits limits `json:"limits"`
			}{tc.def}
			l := New(&cfg, "T")
			l.LookupEnv = tc.env.lookup
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			l.FileFlag(fs, "config", "file")
			l.Flag(fs, "max", "limits.max", "max")
			l.Flag(fs, "rules", "limits.rules", "rules")
			args := tc.args
			if tc.file != "" {
				args = append([]string{"--config", writeFile(t, tc.file)}, args...)
			}
			if err := fs.Parse(args); err != nil {
				t.Fatal(err)
			}
			err := l.Load()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Load = %v, want an error containing %q", err, tc.want)
			}
			if tc.def.Max < 0 && strings.Contains(err.Error(), "(") {
				t.Errorf("a bad default names a source: %v", err)
			}
		})
	}
}

func TestFlagBindingErrors(t *testing.T) {
	for _, key := range []string{"app.cnt", "app", "app.inner", "app.count.x", ""} {
		cfg := defaults()
		l := New(&cfg, "T")
		l.LookupEnv = env{}.lookup
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		l.Flag(fs, "x", key, "")
		if err := l.Load(); err == nil || !strings.HasPrefix(err.Error(), "flag --x: ") {
			t.Errorf("flag bound to %q: Load = %v, want an error naming the flag", key, err)
		}
	}
}

func TestBadDestination(t *testing.T) {
	var nilPtr *testConfig
	for _, dst := range []any{nil, testConfig{}, nilPtr, new(int)} {
		l := New(dst, "T")
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		l.Flag(fs, "x", "app.count", "")
		if err := l.Load(); err == nil {
			t.Errorf("Load into %T succeeded", dst)
		}
		if l.Keys() != nil {
			t.Errorf("Keys of %T not nil", dst)
		}
	}
}

func TestEnvNameCollision(t *testing.T) {
	cfg := struct {
		A int `json:"maxRetries"`
		B int `json:"max_retries"`
	}{}
	l := New(&cfg, "T")
	l.LookupEnv = env{}.lookup
	if err := l.Load(); err == nil || !strings.Contains(err.Error(), "T_MAX_RETRIES: names both maxRetries and max_retries") {
		t.Errorf("Load = %v, want a collision error", err)
	}
}

// TestUnknownEnv lists the prefixed variables that name no key, leaving
// out the known ones and the variables of other prefixes.
func TestUnknownEnv(t *testing.T) {
	cfg := struct {
		Retry struct {
			MaxRetries int `json:"maxRetries"`
		} `json:"retry"`
	}{}
	environ := []string{"T_RETRY_MAX_RETRIES=3", "T_RETRY_MAX_RETRYS=4", "PATH=/bin", "TX_OTHER=1", "T_NOVALUE"}
	got, err := New(&cfg, "T").UnknownEnv(environ)
	if err != nil || strings.Join(got, ",") != "T_RETRY_MAX_RETRYS,T_NOVALUE" {
		t.Errorf("UnknownEnv = %v, %v; want [T_RETRY_MAX_RETRYS T_NOVALUE]", got, err)
	}
	if got, err := New(&cfg, "").UnknownEnv(environ); err != nil || len(got) != 0 {
		t.Errorf("UnknownEnv without a prefix = %v, %v; want none", got, err)
	}
}

func TestEnvName(t *testing.T) {
	for _, tc := range []struct{ prefix, key, want string }{
		{"JRETRY", "retry.maxRetries", "JRETRY_RETRY_MAX_RETRIES"},
		{"JRETRY", "retry.baseDelayMs", "JRETRY_RETRY_BASE_DELAY_MS"},
		{"JRETRY", "retry.strategies.long.jitterMs", "JRETRY_RETRY_STRATEGIES_LONG_JITTER_MS"},
		{"JRETRY", "store.baseURL", "JRETRY_STORE_BASE_URL"},
		{"JRETRY", "store.URLPath", "JRETRY_STORE_URL_PATH"},
		{"JRETRY", "executor.pool2Size", "JRETRY_EXECUTOR_POOL2_SIZE"},
		{"JRETRY", "a-b", "JRETRY_A_B"},
		{"", "mode", "MODE"},
	} {
		if got := EnvName(tc.prefix, tc.key); got != tc.want {
			t.Errorf("EnvName(%q, %q) = %q, want %q", tc.prefix, tc.key, got, tc.want)
		}
	}
}

func TestKeys(t *testing.T) {
	cfg := defaults()
	keys := New(&cfg, "T").Keys()
	got := map[string]string{}
	for _, k := range keys {
		got[k.Path] = k.Env
	}
	for path, want := range map[string]string{"app.inner.depth": "T_APP_INNER_DEPTH", "app.shared": "T_APP_SHARED", "mode": "T_MODE", "app.at": "T_APP_AT"} {
		if got[path] != want {
			t.Errorf("Keys()[%s] = %q, want %q", path, got[path], want)
		}
	}
	if _, ok := got["app.inner"]; ok {
		t.Error("a section listed as a key")
	}
	if len(keys) != 17 {
		t.Errorf("%d keys, want 17: %v", len(keys), keys)
	}
}

func TestFlagUsageShowsDefaults(t *testing.T) {
	cfg := defaults()
	l := New(&cfg, "T")
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	var out strings.Builder
	fs.SetOutput(&out)
	l.Flag(fs, "timeout", "app.timeout", "`duration` to wait")
	l.Flag(fs, "labels", "app.labels", "labels")
	l.Flag(fs, "on", "app.on", "switch")
	fs.PrintDefaults()
	for _, want := range []string{"-timeout duration", "(default 30s)", "(default team=core)", "-on\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "default false") {
		t.Errorf("usage shows a zero default:\n%s", out.String())
	}
}

// FuzzSetText feeds arbitrary text to the leaf parser for every kind of
// value: no panic, and a value that parses formats back to one that parses
// to the same.
func FuzzSetText(f *testing.F) {
	for _, s := range []string{"", "0", "-1", "1e3", "NaN", "+Inf", "30s", "1500", "9223372036854775807", "a=1,b=2", `{"a":"b"}`, `["x"]`, "true", "high", "2026-01-02T03:04:05Z", " , ", "=", "[", "{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, key := range []string{"name", "count", "small", "size", "on", "timeout", "tags", "labels", "level", "at", "inner.ratio", "ints"} {
			cfg := defaults()
			v, err := confvalue.Lookup(reflect.ValueOf(&cfg.App).Elem(), key)
			if err != nil {
				t.Fatal(err)
			}
			if err := confvalue.SetText(v, s); err != nil {
				continue
			}
			if v.Kind() == reflect.Map || v.Kind() == reflect.Slice || v.Type() == reflect.TypeFor[time.Time]() {
				continue // formats lose JSON quoting or precision
			}
			again := reflect.New(v.Type()).Elem()
			if err := confvalue.SetText(again, confvalue.Format(v)); err != nil || !reflect.DeepEqual(again.Interface(), v.Interface()) {
				if f, ok := v.Interface().(float64); ok && math.IsNaN(f) {
					t.Fatalf("%s: NaN accepted from %q", key, s)
				}
				t.Fatalf("%s: %q parsed to %v, which does not parse back: %v", key, s, v, err)
			}
		}
	})
}

// FuzzLoadFile applies arbitrary file contents: never a panic, and an
// error for anything that is not a JSON object.
func FuzzLoadFile(f *testing.F) {
	for _, s := range []string{`{}`, `{"app": {"count": 2, "labels": {"x": "y"}, "tags": ["a"]}}`, `{"app": {"inner": {"depth": "x"}}}`, `[`, `{"mode": null}`, `{"app": {"timeout": 1e400}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg := defaults()
		doc, err := confvalue.Parser{}.Unmarshal(b)
		if err == nil {
			err = confvalue.SetJSON(reflect.ValueOf(&cfg).Elem(), doc, "")
		}
		if err == nil && !strings.HasPrefix(strings.TrimLeft(string(b), " \t\r\n"), "{") {
			t.Fatalf("applied a document that is not an object: %q", b)
		}
	})
}
