// Package confvalue is the typed half of the configuration loader (package
// config): it maps a struct's json-tagged fields to dotted keys and parses
// a value of every supported kind from JSON or from text, with errors that
// name the key and what was wrong.
//
// It is hand-written because the library that reads and merges the sources
// (koanf) decodes through mapstructure, which, measured on this module's
// cases, accepts unknown keys unless told otherwise and then names them
// without a suggestion, wraps an int8 300 to 44, reads 1500 as 1.5µs
// rather than 1.5 s, rounds int64 numbers above 2^53, takes the last of a
// key given twice, writes into the defaults' maps in place and phrases its
// errors as "'count' cannot parse value as 'int'"; and its JSON parser
// reports syntax errors without a line.
package confvalue

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"unicode/utf8"
)

// Parser is the strict JSON parser of a configuration file, for koanf's
// Load: a document that is not an object, repeats a key, is not UTF-8 or
// nests deeper than 64 levels is an error (the last with its line).
type Parser struct{}

// Unmarshal parses a configuration file into its nested map, numbers kept
// as json.Number.
func (Parser) Unmarshal(b []byte) (map[string]any, error) {
	doc, err := DecodeJSON(b)
	if err != nil {
		return nil, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("top level: want a JSON object, got %s", describe(doc))
	}
	return obj, nil
}

// Marshal is not needed: the loader never writes a file.
func (Parser) Marshal(map[string]any) ([]byte, error) {
	return nil, errors.New("marshal: not supported")
}

// DecodeJSON parses a JSON document, keeping numbers as json.Number so
// integers keep every digit. A key repeated in an object is an error (the
// second would silently win); a syntax error reports its line.
func DecodeJSON(b []byte) (any, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errors.New("empty document (want a JSON object)")
	}
	if !utf8.Valid(b) {
		// encoding/json would read each bad byte as U+FFFD, silently.
		i := 0
		for r, n := utf8.DecodeRune(b); r != utf8.RuneError || n != 1; r, n = utf8.DecodeRune(b[i:]) {
			i += n
		}
		return nil, fmt.Errorf("line %d: not valid UTF-8 (byte %#x)", 1+bytes.Count(b[:i], []byte("\n")), b[i])
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	doc, err := decodeValue(dec, "", 0)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("data after the top-level JSON value")
		}
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(max(int(se.Offset), 0), len(b))], []byte("\n"))
		return nil, fmt.Errorf("line %d: %w", line, err)
	}
	if errors.Is(err, io.EOF) {
		return nil, io.ErrUnexpectedEOF
	}
	return doc, err
}

// maxDepth bounds the nesting of a document: configuration is shallow,
// and the bound keeps a hostile file from exhausting the stack.
const maxDepth = 64

// decodeValue reads one JSON value from dec, as json.Unmarshal into an any
// would, at the dotted path (for duplicate-key errors).
func decodeValue(dec *json.Decoder, path string, depth int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("document nested deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch tok {
	case json.Delim('{'):
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k, _ := kt.(string) // the decoder only returns string keys
			p := Join(path, k)
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("%s: key given twice", p)
			}
			if obj[k], err = decodeValue(dec, p, depth+1); err != nil {
				return nil, err
			}
		}
		_, err := dec.Token() // '}'
		return obj, err
	case json.Delim('['):
		arr := []any{}
		for i := 0; dec.More(); i++ {
			v, err := decodeValue(dec, fmt.Sprintf("%s[%d]", path, i), depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err := dec.Token() // ']'
		return arr, err
	}
	return tok, nil
}
