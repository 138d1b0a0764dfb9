package model

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
)

func loadText(t testing.TB, text string, opt TableOptions) (*Table, error) {
	t.Helper()
	r, err := OpenTable(strings.NewReader(text), opt)
	if err != nil {
		return nil, err
	}
	return LoadTable(context.Background(), r, int64(len(text)))
}

func TestTableRead(t *testing.T) {
	text := "\ufeffts;room;\"temp\";y\r\n" +
		"2026-01-01;bath;21.5;1\r\n" +
		"\r\n" +
		"2026-01-02;\"living; south\";NA;2\n" +
		"2026-01-03;\"say \"\"hi\"\"\";  3e1 ;3\n" +
		"2026-01-04;null;-4;\n" + // no target: dropped
		"2026-01-05;;5;5"
	tb, err := loadText(t, text, TableOptions{Target: "y", Ignore: []string{"ts"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tb.Inputs, []string{"room", "temp"}) || !slices.Equal(tb.Text, []bool{true, false}) {
		t.Fatalf("inputs %v text %v", tb.Inputs, tb.Text)
	}
	if tb.Len() != 4 || tb.Dropped != 1 || !slices.Equal(tb.Y, []float32{1, 2, 3, 5}) {
		t.Fatalf("rows %d dropped %d y %v", tb.Len(), tb.Dropped, tb.Y)
	}
	wantRoom := []uint32{HashCategory("bath"), HashCategory("living; south"), HashCategory(`say "hi"`), 0}
	for i, h := range wantRoom {
		if got := math.Float32bits(tb.Raw[2*i]); got != h {
			t.Errorf("row %d room hash %x, want %x", i, got, h)
		}
	}
	temp := []float32{tb.Raw[1], tb.Raw[3], tb.Raw[5], tb.Raw[7]}
	if temp[0] != 21.5 || temp[1] == temp[1] || temp[2] != 30 || temp[3] != 5 {
		t.Errorf("temp %v", temp)
	}
	room, tmp := tb.Stats[0], tb.Stats[1]
	if room.Missing != 1 || len(room.Counts) != 3 || room.Counts["living; south"] != 1 {
		t.Errorf("room stats %+v", room)
	}
	if tmp.N != 3 || tmp.Missing != 1 || math.Abs(tmp.Mean-(21.5+30+5)/3) > 1e-9 || tmp.Min != 5 || tmp.Max != 30 {
		t.Errorf("temp stats %+v", tmp)
	}

	// Tabs, chosen columns in their order, a numeric column read as text.
	tb, err = loadText(t, "a\tb\tc\n1\t2\t3\n4\t5\t6\n", TableOptions{Columns: []string{"c", "a"}, Text: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tb.Inputs, []string{"c", "a"}) || !tb.Text[1] || tb.Raw[0] != 3 || math.Float32bits(tb.Raw[1]) != HashCategory("1") {
		t.Errorf("tab file: %v %v %v", tb.Inputs, tb.Text, tb.Raw)
	}
}

func TestTableErrors(t *testing.T) {
	for _, c := range []struct {
		text, want string
		opt        TableOptions
	}{
		{"a,b,y\n1,2,3\n4,5,6\n7,oops,9\n", "line 4, column 2 (b): not a number", TableOptions{Target: "y"}},
		{"a,y\n1,2\n3\n", "line 3: has 1 fields, the header has 2", TableOptions{Target: "y"}},
		{"a,y\n\"1,2\n", "line 2, column 1 (a): unterminated quoted field", TableOptions{Target: "y"}},
		{"a,y\n1,0\n2,3\n", "line 3, column 2 (y): a logistic target must be 0 or 1", TableOptions{Target: "y", Binary: true}},
		{"a,y\n1,0\n,1\n", "line 3, column 1 (a): missing value", TableOptions{Target: "y", RejectMissing: true}},
		{"a,y\n1,0\ninf,1\n", "line 3, column 1 (a): not a finite number", TableOptions{Target: "y"}},
		{"a,y\n1,0\n", `column "z" is not in the header`, TableOptions{Target: "y", Ignore: []string{"z"}}},
		{"a,a\n1,0\n", "duplicate column name", TableOptions{}},
		{"\n\n", "no header", TableOptions{}},
	} {
		_, err := loadText(t, c.text, c.opt)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.text, err, c.want)
		}
	}
}

// bigCSV returns a file of many chunks with a text column and gaps.
func bigCSV(rows int) string {
	var b strings.Builder
	b.WriteString("x,kind,z,y\n")
	for i := range rows {
		x := fmt.Sprintf("%d.%03d", i%997, i%1000)
		if i%17 == 0 {
			x = "NA"
		}
		kind := []string{"a", "b", "\"c,d\"", ""}[i%4]
		fmt.Fprintf(&b, "%s,%s,%.6e,%d\n", x, kind, float64(i)*1.5e-3, i%7)
		if i%1000 == 999 {
			b.WriteString("\n")
		}
	}
	return b.String()
}

// Chunks parsed in parallel give what one worker gives, in file order, and
// an error deep in the file names its line.
func TestTableParallel(t *testing.T) {
	text := bigCSV(60000) // about 2 MB: several chunks
	one, err := loadText(t, text, TableOptions{Target: "y", Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	many, err := loadText(t, text, TableOptions{Target: "y", Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if one.Len() != 60000 || many.Len() != 60000 {
		t.Fatalf("rows %d and %d", one.Len(), many.Len())
	}
	for i := range one.Raw {
		if math.Float32bits(one.Raw[i]) != math.Float32bits(many.Raw[i]) {
			t.Fatalf("value %d: %v and %v", i, one.Raw[i], many.Raw[i])
		}
	}
	if !slices.Equal(one.Y, many.Y) || one.Stats[0].Mean != many.Stats[0].Mean || one.Stats[1].Counts["c,d"] != 15000 {
		t.Errorf("stats differ: %+v %+v", one.Stats[1], many.Stats[1])
	}
	lines := strings.Split(text, "\n")
	lines[50000] = "1,a,2,3,4"
	_, err = loadText(t, strings.Join(lines, "\n"), TableOptions{Target: "y", Workers: 3})
	var ce *CSVError
	if !errors.As(err, &ce) || ce.Line != 50001 {
		t.Errorf("bad line 50001: %v", err)
	}
	// A streamed scan yields the same rows, more than once.
	r, err := OpenTable(strings.NewReader(text), TableOptions{Target: "y"})
	if err != nil {
		t.Fatal(err)
	}
	rows := r.Rows(context.Background())
	defer rows.Close()
	x := make([]float32, 3)
	for pass := range 2 {
		n := 0
		for {
			y, err := rows.Next(x)
			if err != nil {
				break
			}
			if y != one.Y[n] || math.Float32bits(x[2]) != math.Float32bits(one.Raw[3*n+2]) {
				t.Fatalf("pass %d row %d differs", pass, n)
			}
			n++
		}
		if n != 60000 {
			t.Fatalf("pass %d: %d rows", pass, n)
		}
		if err := rows.Reset(); err != nil { // strings.Reader seeks: the file is read again
			t.Fatal(err)
		}
	}
}

func TestBuildPreprocessing(t *testing.T) {
	text := "room,temp,site,y\nbath,1,s1,1\nkitchen,,s2,2\nkitchen,3,s3,3\n,5,s4,4\n"
	tb, err := loadText(t, text, TableOptions{Target: "y"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = BuildPreprocessing(tb.Stats, PrepOptions{MaxCategories: 3})
	var tm *TooManyCategoriesError
	if !errors.As(err, &tm) || tm.Column != "site" || !strings.Contains(err.Error(), "--hash-bits") {
		t.Fatalf("four sites over a limit of 3: %v", err)
	}
	p, err := BuildPreprocessing(tb.Stats, PrepOptions{MaxCategories: 3, HashBits: 4, Indicators: true})
	if err != nil {
		t.Fatal(err)
	}
	room, temp, site := p.Columns[0], p.Columns[1], p.Columns[2]
	if room.Kind != OneHot || !slices.Equal(room.Categories, []string{"bath", "kitchen"}) || room.FillCategory != "kitchen" || !room.Indicator {
		t.Errorf("room %+v", room)
	}
	if temp.Kind != Numeric || temp.Fill != 3 || !temp.Indicator || site.Kind != Hashed || site.HashBits != 4 || site.Indicator {
		t.Errorf("temp %+v site %+v", temp, site)
	}
	lo, hi := p.FeatureRanges(tb.Stats)
	if len(lo) != len(p.FeatureNames()) || lo[3] != 1 || hi[3] != 5 {
		t.Errorf("ranges %v %v for %v", lo, hi, p.FeatureNames())
	}
	// The table's rows expand exactly as the Encoder encodes readings.
	ds, err := tb.Dataset(p)
	if err != nil {
		t.Fatal(err)
	}
	m := &Model{Features: p.FeatureNames(), Preprocessing: p}
	e := NewEncoder(m)
	readings := []map[string]Value{
		{"room": Str("bath"), "temp": Num(1), "site": Str("s1")},
		{"room": Str("kitchen"), "site": Str("s2")},
		{"room": Str("kitchen"), "temp": Num(3), "site": Str("s3")},
		{"room": {}, "temp": Num(5), "site": Str("s4")},
	}
	x := make([]float32, e.Width())
	for i, r := range readings {
		if err := e.Encode(x, r, nil); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(x, ds.Row(i)) {
			t.Errorf("row %d: table %v, encoder %v", i, ds.Row(i), x)
		}
	}
}

func FuzzTable(f *testing.F) {
	f.Add([]byte("a;b;y\n1;x;2\n\"3;4\";NA;1\n"), uint8(2))
	f.Add([]byte("a,y\n1,2\n\n3,\"4\"\"\"\n"), uint8(1))
	f.Add([]byte(bigCSV(50)), uint8(3))
	f.Fuzz(func(t *testing.T, b []byte, workers uint8) {
		opt := TableOptions{Target: "y", Workers: int(workers%4) + 1}
		tb, err := loadText(t, string(b), opt)
		if err != nil {
			return
		}
		opt.Workers = 1
		one, err := loadText(t, string(b), opt)
		if err != nil {
			t.Fatalf("one worker fails where %d do not: %v", opt.Workers, err)
		}
		if one.Len() != tb.Len() || !bytes.Equal(f32bytes(one.Raw), f32bytes(tb.Raw)) {
			t.Fatalf("workers disagree")
		}
		p, err := BuildPreprocessing(tb.Stats, PrepOptions{HashBits: 3, Indicators: true})
		if err != nil {
			return
		}
		ds, err := tb.Dataset(p)
		if err != nil {
			t.Fatalf("dataset: %v", err)
		}
		if len(ds.X) != ds.Len()*len(ds.Names) {
			t.Fatalf("dataset of %d values for %d rows of %d", len(ds.X), ds.Len(), len(ds.Names))
		}
		m := &Model{Features: p.FeatureNames(), Preprocessing: p, Loss: Squared, Scheme: F32,
			Mean: make([]float32, len(ds.Names)), Std: make([]float32, len(ds.Names)), Weights: make([]float32, len(ds.Names))}
		for i := range m.Std {
			m.Std[i] = 1
		}
		m.Min, m.Max = p.FeatureRanges(tb.Stats)
		file, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("a model with this preprocessing does not encode: %v", err)
		}
		if _, err := Decode(file); err != nil {
			t.Fatalf("decode: %v", err)
		}
	})
}

func f32bytes(v []float32) []byte {
	b := make([]byte, 0, 4*len(v))
	for _, x := range v {
		u := math.Float32bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24))
	}
	return b
}
