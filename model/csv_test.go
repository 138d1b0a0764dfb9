package model

import (
	"bytes"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/scripts/gendata/synth"
)

func readAll(t *testing.T, text string, opt CSVOptions) (*Dataset, error) {
	t.Helper()
	r, err := NewCSVReader(strings.NewReader(text), opt)
	if err != nil {
		return nil, err
	}
	return ReadDataset(r)
}

func TestCSVRead(t *testing.T) {
	text := "\ufeffa, \"b\" ,y\r\n1,2.5,3\r\n\r\n-4, \"5e2\" ,-0.125\n7,8,9"
	d, err := readAll(t, text, CSVOptions{Target: "y"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(d.Names, ",") != "a,b" || d.Label != "y" {
		t.Fatalf("names %v target %q", d.Names, d.Label)
	}
	wantX := []float32{1, 2.5, -4, 500, 7, 8}
	wantY := []float32{3, -0.125, 9}
	if len(d.X) != len(wantX) || len(d.Y) != len(wantY) {
		t.Fatalf("X %v Y %v", d.X, d.Y)
	}
	for i := range wantX {
		if d.X[i] != wantX[i] {
			t.Errorf("X[%d] = %v, want %v", i, d.X[i], wantX[i])
		}
	}
	for i := range wantY {
		if d.Y[i] != wantY[i] {
			t.Errorf("Y[%d] = %v, want %v", i, d.Y[i], wantY[i])
		}
	}
	// Schema order, extra columns ignored, no target.
	d, err = readAll(t, "a,b,c\n1,2,3\n", CSVOptions{Features: []string{"c", "a"}})
	if err != nil || d.X[0] != 3 || d.X[1] != 1 {
		t.Fatalf("schema order: %v %v", d, err)
	}
}

func TestCSVErrors(t *testing.T) {
	for _, c := range []struct {
		text       string
		opt        CSVOptions
		line, col  int
		name, part string
	}{
		{"a,y\n1,2\n3,x\n", CSVOptions{Target: "y"}, 3, 2, "y", "not a number"},
		{"a,y\n1,2\nNaN,1\n", CSVOptions{Target: "y"}, 3, 1, "a", "finite"},
		{"a,y\n1,2\n1,-Inf\n", CSVOptions{Target: "y"}, 3, 2, "y", "finite"},
		{"a,y\n1,2\n1e39,1\n", CSVOptions{Target: "y"}, 3, 1, "a", "range"},
		{"a,y\n1,2\n,1\n", CSVOptions{Target: "y"}, 3, 1, "a", "empty"},
		{"a,y\n1,2\n\n1,2,3\n", CSVOptions{Target: "y"}, 4, 0, "", "3 fields"},
		{"a,,y\n", CSVOptions{}, 1, 2, "", "empty column name"},
		{"a,y\n1,0\n1,1\n2,0.5\n", CSVOptions{Target: "y", Binary: true}, 4, 2, "y", "0 or 1"},
		{"a,a\n", CSVOptions{}, 1, 2, "a", "duplicate"},
	} {
		_, err := readAll(t, c.text, c.opt)
		var ce *CSVError
		if !errors.As(err, &ce) {
			t.Errorf("%q: error %v, want a *CSVError", c.text, err)
			continue
		}
		if ce.Line != c.line || ce.Column != c.col || ce.Name != c.name || !strings.Contains(ce.Error(), c.part) {
			t.Errorf("%q: %+v (%v), want line %d column %d name %q mentioning %q", c.text, ce, ce, c.line, c.col, c.name, c.part)
		}
	}
	if _, err := readAll(t, "a,b\n", CSVOptions{Target: "y"}); err == nil || !strings.Contains(err.Error(), `"y"`) {
		t.Errorf("missing target: %v", err)
	}
	if _, err := readAll(t, "a,b\n", CSVOptions{Features: []string{"c"}}); err == nil {
		t.Error("missing feature accepted")
	}
	if _, err := readAll(t, "\n\n", CSVOptions{}); !errors.Is(err, ErrNoHeader) {
		t.Errorf("empty input: %v", err)
	}
}

func TestCSVDropNonFinite(t *testing.T) {
	text := "a,y\n1,2\nNaN,1\n3,inf\n,4\n5,6\n"
	r, err := NewCSVReader(strings.NewReader(text), CSVOptions{Target: "y", DropNonFinite: true})
	if err != nil {
		t.Fatal(err)
	}
	d, err := ReadDataset(r)
	if err != nil {
		t.Fatal(err)
	}
	if d.Len() != 2 || r.Dropped() != 3 || d.Y[1] != 6 {
		t.Errorf("rows %d dropped %d Y %v", d.Len(), r.Dropped(), d.Y)
	}
	// A value that is not a number at all still fails.
	if _, err := readAll(t, "a,y\nx,1\n", CSVOptions{Target: "y", DropNonFinite: true}); err == nil {
		t.Error("text accepted with DropNonFinite")
	}
}

func TestCSVResetAndLongLines(t *testing.T) {
	// A line longer than the reader's 256 KiB buffer.
	var b strings.Builder
	n := 100000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("c" + strconv.Itoa(i))
	}
	b.WriteByte('\n')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(i % 1000))
	}
	b.WriteByte('\n')
	r, err := NewCSVReader(strings.NewReader(b.String()), CSVOptions{})
	if err != nil {
		t.Fatal(err)
	}
	x := make([]float32, n)
	for pass := range 2 {
		if _, err := r.Next(x); err != nil {
			t.Fatalf("pass %d: %v", pass, err)
		}
		if x[n-1] != float32((n-1)%1000) {
			t.Fatalf("last value %v", x[n-1])
		}
		if _, err := r.Next(x); err != io.EOF {
			t.Fatalf("want EOF, got %v", err)
		}
		if err := r.Reset(); err != nil {
			t.Fatal(err)
		}
	}
}

// The fast path parses exactly as strconv.ParseFloat(s, 32) does.
func TestParseFieldMatchesStrconv(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	check := func(s string) {
		got, reason := parseField([]byte(s))
		want, err := strconv.ParseFloat(s, 32)
		if err != nil {
			if reason == "" {
				t.Errorf("%q: parsed %v, strconv says %v", s, got, err)
			}
			return
		}
		if reason != "" || math.Float32bits(got) != math.Float32bits(float32(want)) {
			t.Errorf("%q: %v (%s), strconv %v", s, got, reason, float32(want))
		}
	}
	for _, s := range []string{"0", "-0", "1.", ".5", "16777215", "16777216", "16777217", "0.1", "3.4028235e38",
		"1.0000000001", "99999.99", "-123.4567", "0.0000001", "12345678901234567890", "+7", "1e-45", "0x1p-3"} {
		check(s)
	}
	for range 200000 {
		v := rng.Float64() * math.Pow(10, float64(rng.IntN(14)-6))
		if rng.IntN(2) == 0 {
			v = -v
		}
		check(strconv.FormatFloat(v, 'f', rng.IntN(11), 64))
	}
}

// refRows parses data the simple way, line by line and field by field
// with parseField: the reference the streaming reader must agree with.
// It returns the rows after the header, or ok=false where a row is bad.
func refRows(data []byte, cols int, drop bool) (rows [][]float32, ok bool) {
	lines := strings.Split(string(data), "\n")
	header := true
	var delim byte = ','
	for _, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		if isBlank([]byte(l)) {
			continue
		}
		if header {
			header = false
			delim = refDelim(l)
			continue
		}
		fields, good := refSplit(l, delim)
		if !good || len(fields) != cols {
			return rows, false
		}
		row := make([]float32, cols)
		skip := false
		for i, f := range fields {
			v, reason := parseField([]byte(f))
			if reason == "" && (math.IsNaN(float64(v)) || math.IsInf(float64(v), 0)) {
				reason = "not a finite number"
			}
			if reason != "" {
				if drop && (reason == "not a finite number" || reason == "empty value") {
					skip = true
					break
				}
				return rows, false
			}
			row[i] = v
		}
		if !skip {
			rows = append(rows, row)
		}
	}
	return rows, true
}

// refDelim is the most frequent of , ; and tab outside quotes (ties: in
// that order).
func refDelim(l string) byte {
	counts := map[byte]int{}
	in := false
	for i := 0; i < len(l); i++ {
		if l[i] == '"' {
			in = !in
		} else if !in {
			counts[l[i]]++
		}
	}
	best := byte(',')
	for _, d := range []byte{';', '\t'} {
		if counts[d] > counts[best] {
			best = d
		}
	}
	return best
}

// refSplit splits a line character by character: a field that starts
// (after blanks) with a quote runs to the closing quote ("" is a quote
// inside) and may only be followed by blanks; its content is kept as
// written between the quotes.
func refSplit(l string, delim byte) ([]string, bool) {
	var fields []string
	i := 0
	for {
		j := i
		for j < len(l) && (l[j] == ' ' || (l[j] == '\t' && delim != '\t')) {
			j++
		}
		if j < len(l) && l[j] == '"' {
			k := j + 1
			for {
				if k >= len(l) {
					return nil, false
				}
				if l[k] == '"' {
					if k+1 < len(l) && l[k+1] == '"' {
						k += 2
						continue
					}
					break
				}
				k++
			}
			fields = append(fields, l[j+1:k])
			k++
			for k < len(l) && l[k] != delim {
				if l[k] != ' ' && l[k] != '\t' {
					return nil, false
				}
				k++
			}
			if k >= len(l) {
				return fields, true
			}
			i = k + 1
			continue
		}
		k := strings.IndexByte(l[i:], delim)
		if k < 0 {
			return append(fields, l[i:]), true
		}
		fields = append(fields, l[i:i+k])
		i += k + 1
	}
}

func FuzzCSV(f *testing.F) {
	f.Add([]byte("a,b,y\n1,2,3\n4.5,-6,7e1\n"), true)
	f.Add([]byte("a,y\r\n\"1\",NaN\r\n,\r\n"), false)
	f.Add([]byte("\ufeffx\n1\n2\n3"), true)
	f.Add([]byte("a,b\n 1.5 ,+2.\n-.5,16777216\n0.00000000001,1,\n"), false)
	f.Fuzz(func(t *testing.T, data []byte, drop bool) {
		r, err := NewCSVReader(bytes.NewReader(data), CSVOptions{DropNonFinite: drop})
		if err != nil {
			return
		}
		want, wantOK := refRows(data, len(r.Header()), drop)
		x := make([]float32, len(r.Features()))
		for n := 0; ; n++ {
			_, err := r.Next(x)
			if err != nil {
				var ce *CSVError
				if err != io.EOF && !errors.As(err, &ce) {
					t.Fatalf("error %v is neither EOF nor a *CSVError", err)
				}
				if err == io.EOF && (!wantOK || n != len(want)) {
					t.Fatalf("EOF after %d rows; the reference reads %d (ok %v)", n, len(want), wantOK)
				}
				if err != io.EOF && (wantOK || n != len(want)) {
					t.Fatalf("row %d: %v; the reference reads %d rows (ok %v)", n, err, len(want), wantOK)
				}
				return
			}
			if n >= len(want) {
				t.Fatalf("row %d read; the reference has %d", n, len(want))
			}
			for i, v := range x {
				if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
					t.Fatalf("non-finite value %v returned", v)
				}
				if math.Float32bits(v) != math.Float32bits(want[n][i]) {
					t.Fatalf("row %d column %d: %v, the reference %v", n, i, v, want[n][i])
				}
			}
		}
	})
}

// BenchmarkCSV measures parsing speed in MB/s on the bench data set's
// shape (32 features of 4 decimals); the aim is more than 100 MB/s.
func BenchmarkCSV(b *testing.B) {
	var buf bytes.Buffer
	if _, err := synth.WriteCSV(&buf, "bench", 100000, 1); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		r, err := NewCSVReader(bytes.NewReader(data), CSVOptions{Target: "y"})
		if err != nil {
			b.Fatal(err)
		}
		x := make([]float32, len(r.Features()))
		for {
			if _, err := r.Next(x); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkCSVHouses is the houses data set: shorter numbers, 7 columns.
func BenchmarkCSVHouses(b *testing.B) {
	var buf bytes.Buffer
	if _, err := synth.WriteCSV(&buf, "houses", 200000, 1); err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		r, _ := NewCSVReader(bytes.NewReader(data), CSVOptions{Target: "price_k"})
		x := make([]float32, len(r.Features()))
		for {
			if _, err := r.Next(x); err != nil {
				break
			}
		}
	}
}

// The delimiter is detected and quoted fields may hold it.
func TestCSVDelimiters(t *testing.T) {
	for _, text := range []string{
		"id;a;y\n\"x;1\";1,5;2\n\"y;2\";3;4\n",
		"id\ta\ty\n\"x\t1\"\t1.5\t2\n\"y\"\"2\"\t3\t4\n",
		"id,a,y\n\"x,1\",1.5,2\n\"y,2\",3,4\n",
	} {
		d, err := readAll(t, text, CSVOptions{Target: "y", Features: []string{"a"}})
		if strings.HasPrefix(text, "id;") {
			// 1,5 is not a number in a ';' file: the error names it.
			var ce *CSVError
			if !errors.As(err, &ce) || ce.Line != 2 || ce.Column != 2 {
				t.Errorf("%q: %v", text, err)
			}
			continue
		}
		if err != nil || len(d.X) != 2 || d.X[0] != 1.5 || d.X[1] != 3 || d.Y[1] != 4 {
			t.Errorf("%q: %v %v", text, d, err)
		}
	}
}
