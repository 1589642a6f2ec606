package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Repair is what the lenient decoder had to fix in a document.
type Repair struct {
	// Escapes counts backslashes that started no valid JSON escape
	// (MyNodeOne's `sed 's/"/\\"/g'` leaves "Backup\share" behind): each is
	// read as a literal backslash.
	Escapes int
	// Controls counts raw control characters inside strings (a newline that
	// kubectl patch decoded from jq's "\n"): each is read as itself.
	Controls int
}

// Changed reports whether anything was repaired.
func (r Repair) Changed() bool { return r.Escapes+r.Controls > 0 }

// String says what was repaired, for a warning.
func (r Repair) String() string {
	var parts []string
	if r.Escapes > 0 {
		parts = append(parts, plural(r.Escapes, "invalid escape", "invalid escapes")+` read as a literal backslash (MyNodeOne's sed escaping, e.g. "Backup\share")`)
	}
	if r.Controls > 0 {
		parts = append(parts, plural(r.Controls, "raw control character", "raw control characters")+" inside strings read as themselves")
	}
	return strings.Join(parts, "; ")
}

// Blank reports whether text is a blank document: empty or only whitespace.
// MyNodeOne leaves " " behind when jq had no input; it means "no entries".
func Blank(text string) bool { return strings.TrimSpace(text) == "" }

// RepairJSON escapes, inside string literals only, raw control characters
// and backslashes that do not start a valid escape, so MyNodeOne's
// hand-escaped values parse as the text they stood for. Text outside strings
// is left alone, so invalid JSON stays invalid.
func RepairJSON(text string) (string, Repair) {
	var b strings.Builder
	var rep Repair
	inString := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if !inString {
			if c == '"' {
				inString = true
			}
			b.WriteByte(c)
			continue
		}
		switch {
		case c == '"':
			inString = false
			b.WriteByte(c)
		case c == '\\':
			if i+1 < len(text) && strings.IndexByte(`"\/bfnrtu`, text[i+1]) >= 0 &&
				(text[i+1] != 'u' || validHex4(text[i+2:])) {
				b.WriteByte(c)
				b.WriteByte(text[i+1])
				i++
				continue
			}
			b.WriteString(`\\`)
			rep.Escapes++
		case c < 0x20:
			switch c {
			case '\n':
				b.WriteString(`\n`)
			case '\t':
				b.WriteString(`\t`)
			case '\r':
				b.WriteString(`\r`)
			default:
				fmt.Fprintf(&b, `\u%04x`, c)
			}
			rep.Controls++
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), rep
}

func validHex4(s string) bool {
	if len(s) < 4 {
		return false
	}
	for i := 0; i < 4; i++ {
		if !strings.ContainsRune("0123456789abcdefABCDEF", rune(s[i])) {
			return false
		}
	}
	return true
}

// DecodeJSON reads one JSON document the way MyNodeOne wrote it: numbers as
// json.Number, objects as map[string]any. A blank document is (nil, {}, nil);
// a document that is only valid after RepairJSON is returned with what was
// repaired; anything else invalid is an error giving the offset.
func DecodeJSON(text string) (any, Repair, error) {
	if Blank(text) {
		return nil, Repair{}, nil
	}
	v, err := decodeStrict(text)
	if err == nil {
		return v, Repair{}, nil
	}
	if fixed, rep := RepairJSON(text); rep.Changed() {
		if v, err2 := decodeStrict(fixed); err2 == nil {
			return v, rep, nil
		}
	}
	return nil, Repair{}, err
}

func decodeStrict(text string) (any, error) {
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(text, dec, err)
	}
	end := int(dec.InputOffset())
	if _, err := dec.Token(); err != io.EOF {
		rest := text[end:]
		end += len(rest) - len(strings.TrimLeft(rest, " \t\r\n"))
		return nil, fmt.Errorf("at offset %d: unexpected data after the JSON value", end)
	}
	return v, nil
}

func jsonError(text string, dec *json.Decoder, err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("at offset %d: unexpected end of JSON", len(text))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("at offset %d: %v", se.Offset, err)
	}
	return fmt.Errorf("at offset %d: %v", dec.InputOffset(), err)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
