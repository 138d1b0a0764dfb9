package wire

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestPeekID(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`{"id":17,"features":[1,2,3]}`, `17`},
		{`{"features":[1,[2,{"id":9}],"x"],"id":"a-1"}`, `"a-1"`},
		{` { "ts" : "2026" , "ID" : -3.5e2 } `, `-3.5e2`},
		{`{"features":{"a":"q\"}","b":null},"label":true,"id":"é"}`, `"é"`},
		{`{"id":"x"`, `"x"`}, // the id is whole: the rest is the decoder's business
		{`{"features":[1,2,3]}`, ``},
		{`{"id":null}`, ``},
		{"{\"id\":0\v", ``},
		{`{"id":[1]}`, ``},
		{`{"id":"` + string([]byte{0xff}) + `"}`, ``},
		{`{"id":"` + string(make([]byte, 130)) + `"}`, ``},
		{`[{"id":1}]`, ``},
		{`{"features":[1,2}`, ``},
		{``, ``},
		{`{"a":"unterminated`, ``},
	} {
		if got := string(PeekID([]byte(c.in))); got != c.want {
			t.Errorf("PeekID(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzPeekID: an id PeekID returns is valid JSON, and it is the id
// encoding/json reads when the whole payload decodes and names one id.
func FuzzPeekID(f *testing.F) {
	for _, s := range []string{`{"id":1,"features":[1,2]}`, `{"features":[1],"id":"z"}`, `{"a":{"id":2},"id":3}`, `{"id":"\u00e9"}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		id := PeekID(b)
		if id == nil {
			return
		}
		if !json.Valid(id) || !utf8.Valid(id) {
			t.Fatalf("PeekID(%q) = %q: not valid JSON", b, id)
		}
		var m map[string]json.RawMessage
		if json.Unmarshal(b, &m) != nil {
			return
		}
		var n int
		var want json.RawMessage
		for k, v := range m {
			if len(k) == 2 && k[0]|0x20 == 'i' && k[1]|0x20 == 'd' {
				n, want = n+1, v
			}
		}
		if n == 1 && len(m) == countKeys(b) && string(want) != string(id) {
			t.Fatalf("PeekID(%q) = %q, encoding/json reads %q", b, id, want)
		}
	})
}

// countKeys counts the top-level keys as written (duplicates included).
func countKeys(b []byte) int {
	d := json.NewDecoder(bytes.NewReader(b))
	if _, err := d.Token(); err != nil {
		return -1
	}
	n := 0
	for d.More() {
		if _, err := d.Token(); err != nil {
			return -1
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return -1
		}
		n++
	}
	return n
}
