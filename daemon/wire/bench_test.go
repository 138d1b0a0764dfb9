package wire

import "testing"

// BenchmarkDecodeSingle is the worker's decode of one plain numeric JSON
// reading (the fast path), by name and positional.
func BenchmarkDecodeSingle(b *testing.B) {
	s := NewSchema([]string{"area_m2", "rooms", "age_years", "distance_m", "lot_m2", "income_eur"}, false)
	for _, c := range []struct{ name, payload string }{
		{"named", `{"id":17,"features":{"area_m2":118.3,"rooms":4,"age_years":70,"distance_m":3302,"lot_m2":2734,"income_eur":26939}}`},
		{"positional", `{"id":17,"features":[118.3,4,70,3302,2734,26939]}`},
	} {
		p := []byte(c.payload)
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, _, rj := Decode("json", p, s, 16); rj != nil {
					b.Fatal(rj)
				}
			}
		})
	}
}
