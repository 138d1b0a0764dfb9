package store

import (
	"path/filepath"
	"slices"
	"testing"
)

func TestRecent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.db")
	s := openTest(t, path, Options{})
	if n, r, err := s.Recent(); n != nil || r != nil || err != nil {
		t.Fatalf("empty store: %v %v %v", n, r, err)
	}
	names := []string{"a", "b", "c"}
	var rows [][]float32
	for i := range 30000 {
		rows = append(rows, []float32{float32(i), float32(i) / 2, -1})
	}
	if err := s.SaveRecent(names, rows); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = openTest(t, path, Options{})
	n, got, err := s.Recent()
	if err != nil || !slices.Equal(n, names) || len(got) == 0 || len(got)*12 > MaxRecentBytes {
		t.Fatalf("recent: %v, %d rows, %v", n, len(got), err)
	}
	// The newest rows are the ones kept.
	if last := got[len(got)-1]; !slices.Equal(last, rows[len(rows)-1]) {
		t.Errorf("last row %v", last)
	}
	if first := got[0]; first[0] != float32(len(rows)-len(got)) {
		t.Errorf("first kept row %v of %d", first, len(got))
	}
	if err := s.SaveRecent(names, [][]float32{{1}}); err == nil {
		t.Error("short row accepted")
	}
}

func TestRecentPerModel(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "s.db"), Options{})
	hv, _ := s.Model("hvac")
	if err := hv.SaveRecent([]string{"t"}, [][]float32{{21}}); err != nil {
		t.Fatal(err)
	}
	if n, r, _ := s.Recent(); n != nil || r != nil {
		t.Errorf("default has hvac's readings: %v %v", n, r)
	}
	if n, r, err := hv.Recent(); err != nil || !slices.Equal(n, []string{"t"}) || len(r) != 1 || r[0][0] != 21 {
		t.Errorf("hvac recent: %v %v %v", n, r, err)
	}
}
