package main

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// svgSummary is what a test reads back from an SVG: that it parses, its
// texts, and how many of each element it holds.
type svgSummary struct {
	texts    []string
	elements map[string]int
}

func parseSVG(t *testing.T, b []byte) svgSummary {
	t.Helper()
	s := svgSummary{elements: map[string]int{}}
	dec := xml.NewDecoder(bytes.NewReader(b))
	var inText bool
	root := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch v := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = v.Name.Space + " " + v.Name.Local
			}
			s.elements[v.Name.Local]++
			inText = v.Name.Local == "text"
		case xml.CharData:
			if inText {
				s.texts = append(s.texts, string(v))
			}
		case xml.EndElement:
			inText = false
		}
	}
	if root != "http://www.w3.org/2000/svg svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	return s
}

// checkSVG reads an SVG file and checks that a text starts with each of
// want.
func checkSVG(t *testing.T, path string, want ...string) svgSummary {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := parseSVG(t, b)
	for _, w := range want {
		if !slices.ContainsFunc(s.texts, func(x string) bool { return strings.HasPrefix(x, w) }) {
			t.Errorf("%s: no text starting %q in %q", path, w, s.texts)
		}
	}
	return s
}

func TestLinearTicks(t *testing.T) {
	for _, c := range []struct {
		lo, hi  float64
		integer bool
		want    []string
	}{
		{0, 1, false, []string{"0.0", "0.2", "0.4", "0.6", "0.8", "1.0"}},
		{-3, 7, false, []string{"-2", "0", "2", "4", "6"}},
		{1, 4, true, []string{"1", "2", "3", "4"}},
		{0.5, 3.5, true, []string{"1", "2", "3"}},
		{100, 1000, false, []string{"200", "400", "600", "800", "1000"}},
	} {
		var got []string
		for _, tk := range linearTicks(c.lo, c.hi, c.integer) {
			got = append(got, tk.label)
			if tk.v < c.lo || tk.v > c.hi {
				t.Errorf("%v..%v: tick %v outside", c.lo, c.hi, tk.v)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%v..%v integer %v: ticks %q, want %q", c.lo, c.hi, c.integer, got, c.want)
		}
	}
}

func TestLogTicks(t *testing.T) {
	var got []string
	for _, tk := range logTicks(0.05, 200) {
		got = append(got, tk.label)
	}
	if want := []string{"0.1", "1", "10", "100"}; !slices.Equal(got, want) {
		t.Errorf("0.05..200: %q, want %q", got, want)
	}
	// Less than a decade apart: round values instead, all positive.
	ts := logTicks(2, 5)
	if len(ts) < 3 {
		t.Errorf("2..5: only %v", ts)
	}
	for _, tk := range ts {
		if tk.v < 2 || tk.v > 5 {
			t.Errorf("2..5: tick %v", tk.v)
		}
	}
}

func TestHistogram(t *testing.T) {
	h := histogram([]float64{0, 0.1, 0.5, 0.99, 1}, 0, 1, 4)
	if want := []float64{2, 0, 1, 2}; !slices.Equal(h.counts, want) {
		t.Errorf("counts %v, want %v", h.counts, want)
	}
	if h.edges[0] != 0 || h.edges[4] != 1 {
		t.Errorf("edges %v", h.edges)
	}
	// All values equal: one bar, no division by zero.
	h = histogram([]float64{3, 3, 3}, 3, 3, 10)
	var n float64
	for _, c := range h.counts {
		n += c
	}
	if n != 3 || math.IsNaN(h.edges[0]) {
		t.Errorf("constant values: %v %v", h.counts, h.edges)
	}
}

// Every point drawn, the names escaped, and a constant or empty series
// still gives finite coordinates.
func TestRenderSVG(t *testing.T) {
	p := newPanel()
	p.title = `a <target> & "more"`
	p.series = []series{
		{name: "pts", pts: []xy{{1, 1}, {2, 2}, {3, 3}}, color: "#000", marker: "circle", radius: 2},
		{name: "flat", pts: []xy{{1, 5}, {3, 5}}, color: "#f00", line: true, marker: "square", radius: 2},
	}
	q := newPanel()
	q.logY = true
	q.series = []series{{pts: []xy{{1, 0.5}, {2, 0.5}}, line: true, color: "#00f"}}
	b := renderSVG(800, 400, p, q)
	s := parseSVG(t, b)
	if !slices.Contains(s.texts, `a <target> & "more"`) {
		t.Errorf("title lost: %q", s.texts)
	}
	if s.elements["circle"] != 3+1 { // three points and the legend's sample
		t.Errorf("%d circles", s.elements["circle"])
	}
	if s.elements["polyline"] != 2 {
		t.Errorf("%d polylines", s.elements["polyline"])
	}
	if bytes.Contains(b, []byte("NaN")) || bytes.Contains(b, []byte("Inf")) {
		t.Errorf("non-finite coordinate in %s", b)
	}
}

func TestPlotLossAndFit(t *testing.T) {
	dir := t.TempDir()
	h := 0.5
	losses := []epochLoss{{Epoch: 1, Train: 10, Holdout: &h}, {Epoch: 2, Train: 1, Holdout: &h}, {Epoch: 3, Train: 0.1}}
	path := filepath.Join(dir, "loss.svg")
	if err := plotLoss(path, losses, model.Squared); err != nil {
		t.Fatal(err)
	}
	s := checkSVG(t, path, "loss per epoch", "train (during", "holdout (after", "mean squared error", "0.1", "10")
	if s.elements["polyline"] != 2 {
		t.Errorf("%d curves, want 2", s.elements["polyline"])
	}
	if err := plotLoss(path, nil, model.Squared); err == nil {
		t.Error("plotLoss accepted no epochs")
	}
	if err := checkPlotPath("fit.png"); err == nil || !strings.Contains(err.Error(), ".svg") {
		t.Errorf("fit.png: %v", err)
	}
	if err := checkPlotPath("FIT.SVG"); err != nil {
		t.Errorf("FIT.SVG: %v", err)
	}
}
