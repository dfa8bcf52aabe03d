package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/journeyretry/journeyretry/retry"
)

// Rule matches failures: the design's retryableErrors and
// nonRetryableErrors entries. A Rule is an immutable value, safe for
// concurrent use.
//
// As configuration data a rule is a string (see [ParseRule]):
//
//	timeout              the message contains "timeout" (case-sensitive)
//	msg:class: x         the message contains "class: x" (msg: quotes a
//	                     substring that would otherwise read as a kind)
//	re:(?i)^rate limit   the message matches the regular expression (Go
//	                     RE2 syntax, unanchored unless the pattern anchors)
//	class:validation     the error's class is validation
//
// errors.Is targets have no string form: build them with [ErrorIs].
type Rule struct {
	kind   ruleKind
	text   string // substring, or the class name
	re     *regexp.Regexp
	target error
}

type ruleKind uint8

const (
	ruleSubstring ruleKind = iota + 1
	ruleRegexp
	ruleClass
	ruleErrorIs
)

// maxRuleLen bounds a rule string: rules are configuration, not data.
const maxRuleLen = 1024

// ParseRule parses a rule string (see [Rule]). It rejects an empty rule or
// pattern, an invalid regular expression or class name, and any other
// "word:" prefix (write "msg:word:..." to match such text literally), so a
// typo never silently becomes a substring that matches nothing.
func ParseRule(s string) (Rule, error) {
	if s == "" {
		return Rule{}, errors.New("empty rule")
	}
	if len(s) > maxRuleLen {
		return Rule{}, fmt.Errorf("rule longer than %d bytes", maxRuleLen)
	}
	kind, rest, found := strings.Cut(s, ":")
	if !found || !isWord(kind) {
		return MessageContains(s), nil
	}
	if rest == "" {
		return Rule{}, fmt.Errorf("rule %q: empty pattern after %q", s, kind+":")
	}
	switch kind {
	case "msg":
		return MessageContains(rest), nil
	case "re":
		re, err := regexp.Compile(rest)
		if err != nil {
			return Rule{}, fmt.Errorf("rule %q: invalid regular expression: %w", s, err)
		}
		return MessageMatches(re), nil
	case "class":
		if err := retry.ValidateClassName(rest); err != nil {
			return Rule{}, fmt.Errorf("rule %q: %w", s, err)
		}
		return ClassIs(retry.Class(rest)), nil
	}
	return Rule{}, fmt.Errorf("rule %q: unknown kind %q (want msg:, re:, class: or a plain substring; write %q to match the text literally)", s, kind+":", "msg:"+s)
}

// isWord reports whether s is a non-empty run of lowercase ASCII letters:
// the shape of a rule kind.
func isWord(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// MessageContains matches a failure whose message contains substr.
func MessageContains(substr string) Rule { return Rule{kind: ruleSubstring, text: substr} }

// MessageMatches matches a failure whose message matches re (never, if re
// is nil).
func MessageMatches(re *regexp.Regexp) Rule { return Rule{kind: ruleRegexp, re: re} }

// ClassIs matches a failure of class c.
func ClassIs(c retry.Class) Rule { return Rule{kind: ruleClass, text: string(c)} }

// ErrorIs matches a failure whose error is or wraps target (errors.Is). It
// never matches a failure read back from the store, which has no error.
func ErrorIs(target error) Rule { return Rule{kind: ruleErrorIs, target: target} }

// Match reports whether f matches the rule. The zero Rule matches nothing.
func (r Rule) Match(f retry.Failure) bool {
	switch r.kind {
	case ruleSubstring:
		return strings.Contains(message(f), r.text)
	case ruleRegexp:
		return r.re != nil && r.re.MatchString(message(f))
	case ruleClass:
		return string(f.Class) == r.text
	case ruleErrorIs:
		return f.Err != nil && errors.Is(f.Err, r.target)
	}
	return false
}

// message is the failure's text: Message, or the error's when a caller left
// Message empty.
func message(f retry.Failure) string {
	if f.Message == "" && f.Err != nil {
		return f.Err.Error()
	}
	return f.Message
}

// String returns the rule in [ParseRule]'s syntax (an [ErrorIs] rule as
// "is:" and its target's message, which does not parse back).
func (r Rule) String() string {
	switch r.kind {
	case ruleSubstring:
		if k, _, found := strings.Cut(r.text, ":"); found && isWord(k) {
			return "msg:" + r.text
		}
		return r.text
	case ruleRegexp:
		if r.re == nil {
			return ""
		}
		return "re:" + r.re.String()
	case ruleClass:
		return "class:" + r.text
	case ruleErrorIs:
		return fmt.Sprintf("is:%v", r.target)
	}
	return ""
}

// ParseRules parses a list of rule strings; an error names the index.
func ParseRules(ss []string) ([]Rule, error) {
	rules := make([]Rule, 0, len(ss))
	for i, s := range ss {
		r, err := ParseRule(s)
		if err != nil {
			return nil, fmt.Errorf("[%d]: %w", i, err)
		}
		rules = append(rules, r)
	}
	return rules, nil
}
