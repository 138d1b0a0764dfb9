package wire

import (
	"math"
	"strconv"
	"unsafe"
)

// fastReading decodes the common shape of a single JSON reading —
// {"id":..,"ts":..,"label":..,"explain":..,"features":[...] or {...}} with plain ASCII
// strings and numbers — without encoding/json, which is a fifth of the
// daemon's CPU per reading. It accepts only what it is sure of: anything
// else (escapes, nulls, other keys, a batch, any error to report) returns
// ok == false and the caller decodes with encoding/json, which then gives
// the same reading or the rejection. FuzzFastReading checks that whatever
// it accepts, encoding/json decodes to the same reading.
func fastReading(b []byte, s *Schema) (r Reading, ok bool) {
	if !s.plain {
		return r, false // categories, imputation: the Encoder's work
	}
	p := fastParser{b: b}
	p.ws()
	if !p.eat('{') {
		return r, false
	}
	var haveID, haveTS, haveLabel, haveFeatures bool
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return r, false
		}
		p.ws()
		if !p.eat(':') {
			return r, false
		}
		p.ws()
		switch string(key) {
		case "id", "ts":
			start := p.i
			if p.i < len(b) && b[p.i] == '"' {
				_, ok = p.str()
			} else {
				_, ok = p.num()
			}
			raw := b[start:p.i]
			if key[0] == 'i' {
				if !ok || haveID || len(raw) > 128 {
					return r, false
				}
				haveID, r.ID = true, raw
			} else {
				if !ok || haveTS || len(raw) > 64 {
					return r, false
				}
				haveTS, r.TS = true, raw
			}
		case "label":
			v, ok := p.num()
			if !ok || haveLabel {
				return r, false
			}
			y, rj := checkLabel(v, s)
			if rj != nil {
				return r, false
			}
			haveLabel, r.Label, r.HasLabel = true, y, true
		case "explain":
			if r.Explain != 0 {
				return r, false
			}
			switch {
			case p.lit("true"):
				r.Explain = 1
			case p.lit("false"):
				r.Explain = -1
			default:
				return r, false
			}
		case "features":
			if haveFeatures || !p.features(&r, s) {
				return r, false
			}
			haveFeatures = true
		default:
			return r, false
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return r, false
		}
		break
	}
	p.ws()
	return r, haveFeatures && p.i == len(b)
}

type fastParser struct {
	b []byte
	i int
}

func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) eat(c byte) bool {
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// lit reads the literal word w.
func (p *fastParser) lit(w string) bool {
	if len(p.b)-p.i < len(w) || string(p.b[p.i:p.i+len(w)]) != w {
		return false
	}
	p.i += len(w)
	return true
}

// str reads a string of printable ASCII without escapes and returns its
// contents.
func (p *fastParser) str() ([]byte, bool) {
	if !p.eat('"') {
		return nil, false
	}
	start := p.i
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			return p.b[start : p.i-1], true
		case c < 0x20 || c == '\\' || c >= 0x80:
			return nil, false
		}
		p.i++
	}
	return nil, false
}

// num reads a number in JSON's grammar and parses it as encoding/json
// does (strconv.ParseFloat, 64 bits); out of range is not ok.
func (p *fastParser) num() (float64, bool) {
	b, start := p.b, p.i
	digits := func() int {
		n := 0
		for p.i < len(b) && b[p.i] >= '0' && b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	p.eat('-')
	if p.eat('0') {
		// no leading zeros
	} else if digits() == 0 {
		return 0, false
	}
	if p.eat('.') && digits() == 0 {
		return 0, false
	}
	if p.i < len(b) && (b[p.i] == 'e' || b[p.i] == 'E') {
		p.i++
		if !p.eat('+') {
			p.eat('-')
		}
		if digits() == 0 {
			return 0, false
		}
	}
	tok := b[start:p.i]
	v, err := strconv.ParseFloat(unsafe.String(unsafe.SliceData(tok), len(tok)), 64)
	return v, err == nil
}

func (p *fastParser) features(r *Reading, s *Schema) bool {
	n := len(s.Features)
	r.X = make([]float32, n)
	if p.eat('[') {
		p.ws()
		if p.eat(']') {
			return n == 0
		}
		for k := 0; ; k++ {
			p.ws()
			v, ok := p.num()
			if !ok || k >= n {
				return false
			}
			x, ok := s.finite32(v)
			if !ok {
				return false
			}
			r.X[k] = x
			p.ws()
			if p.eat(',') {
				continue
			}
			return p.eat(']') && k == n-1
		}
	}
	if !p.eat('{') {
		return false
	}
	var set []bool
	if n <= 64 {
		var buf [64]bool
		set = buf[:n]
	} else {
		set = make([]bool, n)
	}
	count := 0
	p.ws()
	if p.eat('}') {
		return n == 0
	}
	for {
		p.ws()
		name, ok := p.str()
		if !ok {
			return false
		}
		i, ok := s.index[string(name)]
		if !ok || set[i] {
			return false
		}
		p.ws()
		if !p.eat(':') {
			return false
		}
		p.ws()
		v, ok := p.num()
		if !ok {
			return false
		}
		x, ok := s.finite32(v)
		if !ok {
			return false
		}
		r.X[i], set[i] = x, true
		count++
		p.ws()
		if p.eat(',') {
			continue
		}
		return p.eat('}') && count == n
	}
}

// finite32 is finite32 as the schema's slow path decides it: a model's
// Encoder also refuses a number beyond float32's range that rounds to it.
func (s *Schema) finite32(v float64) (float32, bool) {
	if s.enc != nil && math.Abs(v) > math.MaxFloat32 {
		return 0, false
	}
	return finite32(v)
}

// ScanID returns the raw "id" of a message that is one flat object of
// plain strings and numbers (a single prediction or an error report),
// whatever the order of its keys, without encoding/json: a load generator
// reading thousands of answers a second needs nothing else. ok is false
// for anything else (a batch, escapes, no id): decode it with
// encoding/json then.
func ScanID(b []byte) (id []byte, ok bool) {
	p := fastParser{b: b}
	p.ws()
	if !p.eat('{') {
		return nil, false
	}
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return nil, false
		}
		p.ws()
		if !p.eat(':') {
			return nil, false
		}
		p.ws()
		start := p.i
		if p.i < len(b) && b[p.i] == '"' {
			_, ok = p.str()
		} else {
			_, ok = p.num()
		}
		if !ok {
			return nil, false
		}
		// encoding/json matches keys without regard to case.
		if len(key) == 2 && (key[0]|0x20) == 'i' && (key[1]|0x20) == 'd' {
			if id != nil {
				return nil, false
			}
			id = b[start:p.i]
		}
		p.ws()
		if p.eat(',') {
			continue
		}
		if !p.eat('}') {
			return nil, false
		}
		p.ws()
		return id, id != nil && p.i == len(b)
	}
}
