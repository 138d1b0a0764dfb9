package main

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
)

// A small chart renderer for `linnet plot` and `train --plot`. It writes
// SVG: every browser opens it, and the browser draws the text, so the
// binary carries no font and no rasterizer.

// xy is one data point.
type xy struct{ X, Y float64 }

// series is a line, a set of markers, or both.
type series struct {
	name    string
	pts     []xy
	color   string
	line    bool    // join the points
	dashed  bool    // a dashed line
	marker  string  // "", "circle" or "square"
	radius  float64 // marker radius in pixels
	opacity float64 // marker fill opacity; 0 means 1
}

// hist is a histogram: counts[i] rows between edges[i] and edges[i+1].
type hist struct {
	edges  []float64
	counts []float64
	color  string
}

// panel is one chart: axes, ticks, grid, legend, data.
type panel struct {
	title, xLabel, yLabel  string
	xMin, xMax, yMin, yMax float64 // NaN: from the data
	logY                   bool    // log10 y axis; every y must be positive
	xInt, yInt             bool    // ticks on whole numbers only
	grid                   bool
	legendTop              bool // legend at the top right, else bottom right
	series                 []series
	hist                   *hist
}

func newPanel() *panel {
	nan := math.NaN()
	return &panel{xMin: nan, xMax: nan, yMin: nan, yMax: nan}
}

// svgDoc is an SVG document being written.
type svgDoc struct {
	b      bytes.Buffer
	clipID int
}

// renderSVG draws panels side by side on a white w x h pixel canvas.
func renderSVG(w, h float64, panels ...*panel) []byte {
	d := &svgDoc{}
	fmt.Fprintf(&d.b, `<svg xmlns="http://www.w3.org/2000/svg" width="%g" height="%g" viewBox="0 0 %g %g" `+
		`font-family="Helvetica, Arial, sans-serif" font-size="13">`+"\n", w, h, w, h)
	// A white background: a transparent image is unreadable in dark viewers.
	fmt.Fprintf(&d.b, `<rect width="%g" height="%g" fill="#fff"/>`+"\n", w, h)
	pw := w / float64(len(panels))
	for i, p := range panels {
		p.draw(d, float64(i)*pw, 0, pw, h)
	}
	d.b.WriteString("</svg>\n")
	return d.b.Bytes()
}

// text writes one label; anchor is start, middle or end; rotate in degrees.
func (d *svgDoc) text(x, y float64, anchor, s string, size float64, rotate float64) {
	fmt.Fprintf(&d.b, `<text x="%.1f" y="%.1f" text-anchor="%s"`, x, y, anchor)
	if size != 0 {
		fmt.Fprintf(&d.b, ` font-size="%g"`, size)
	}
	if rotate != 0 {
		fmt.Fprintf(&d.b, ` transform="rotate(%g %.1f %.1f)"`, rotate, x, y)
	}
	d.b.WriteString(">")
	_ = xml.EscapeText(&d.b, []byte(s))
	d.b.WriteString("</text>\n")
}

// The panel's margins in pixels, around the plotting area.
const (
	marginLeft   = 72
	marginRight  = 16
	marginTop    = 34
	marginBottom = 48
)

func (p *panel) draw(d *svgDoc, x0, y0, w, h float64) {
	xlo, xhi, ylo, yhi := p.ranges()
	ax, ay := x0+marginLeft, y0+marginTop
	aw, ah := w-marginLeft-marginRight, h-marginTop-marginBottom
	fy := func(v float64) float64 { return v }
	if p.logY {
		fy = math.Log10
	}
	ylo, yhi = fy(ylo), fy(yhi)
	px := func(v float64) float64 { return ax + (v-xlo)/(xhi-xlo)*aw }
	py := func(v float64) float64 { return ay + ah - (fy(v)-ylo)/(yhi-ylo)*ah }

	d.text(x0+w/2, y0+20, "middle", p.title, 14, 0)
	d.text(ax+aw/2, y0+h-10, "middle", p.xLabel, 0, 0)
	d.text(x0+16, ay+ah/2, "middle", p.yLabel, 0, -90)

	var xt, yt []tick
	xt = linearTicks(xlo, xhi, p.xInt)
	if p.logY {
		yt = logTicks(math.Pow(10, ylo), math.Pow(10, yhi))
	} else {
		yt = linearTicks(ylo, yhi, p.yInt)
	}
	d.b.WriteString(`<g stroke="#000" stroke-width="1">` + "\n")
	for _, t := range xt {
		fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", px(t.v), ay+ah, px(t.v), ay+ah+5)
	}
	for _, t := range yt {
		fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", ax-5, py(t.v), ax, py(t.v))
	}
	d.b.WriteString("</g>\n")
	if p.grid {
		d.b.WriteString(`<g stroke="#ddd" stroke-width="1">` + "\n")
		for _, t := range xt {
			fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", px(t.v), ay, px(t.v), ay+ah)
		}
		for _, t := range yt {
			fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>`+"\n", ax, py(t.v), ax+aw, py(t.v))
		}
		d.b.WriteString("</g>\n")
	}
	for _, t := range xt {
		d.text(px(t.v), ay+ah+19, "middle", t.label, 0, 0)
	}
	for _, t := range yt {
		d.text(ax-8, py(t.v)+4, "end", t.label, 0, 0)
	}

	// The data, clipped to the plotting area.
	d.clipID++
	fmt.Fprintf(&d.b, `<clipPath id="c%d"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></clipPath>`+"\n",
		d.clipID, ax, ay, aw, ah)
	fmt.Fprintf(&d.b, `<g clip-path="url(#c%d)">`+"\n", d.clipID)
	if hg := p.hist; hg != nil {
		fmt.Fprintf(&d.b, `<g fill="%s">`+"\n", hg.color)
		for i, c := range hg.counts {
			if c > 0 {
				x1, x2 := px(hg.edges[i]), px(hg.edges[i+1])
				fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", x1, py(c), x2-x1, py(0)-py(c))
			}
		}
		d.b.WriteString("</g>\n")
	}
	for _, s := range p.series {
		if s.line && len(s.pts) > 0 {
			fmt.Fprintf(&d.b, `<polyline fill="none" stroke="%s" stroke-width="1.5"`, s.color)
			if s.dashed {
				d.b.WriteString(` stroke-dasharray="6 4"`)
			}
			d.b.WriteString(` points="`)
			for i, pt := range s.pts {
				if i > 0 {
					d.b.WriteByte(' ')
				}
				fmt.Fprintf(&d.b, "%.1f,%.1f", px(pt.X), py(pt.Y))
			}
			d.b.WriteString(`"/>` + "\n")
		}
		if s.marker != "" {
			d.markers(s, px, py)
		}
	}
	d.b.WriteString("</g>\n")
	fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#000"/>`+"\n", ax, ay, aw, ah)
	p.legend(d, ax, ay, aw, ah)
}

func (d *svgDoc) markers(s series, px, py func(float64) float64) {
	op := s.opacity
	if op == 0 {
		op = 1
	}
	fmt.Fprintf(&d.b, `<g fill="%s" fill-opacity="%g">`+"\n", s.color, op)
	for _, pt := range s.pts {
		d.marker(s.marker, px(pt.X), py(pt.Y), s.radius)
	}
	d.b.WriteString("</g>\n")
}

func (d *svgDoc) marker(shape string, x, y, r float64) {
	if shape == "square" {
		fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`+"\n", x-r, y-r, 2*r, 2*r)
		return
	}
	fmt.Fprintf(&d.b, `<circle cx="%.1f" cy="%.1f" r="%.1f"/>`+"\n", x, y, r)
}

// legend draws the named series in a box in the plotting area's corner.
func (p *panel) legend(d *svgDoc, ax, ay, aw, ah float64) {
	var named []series
	width := 0
	for _, s := range p.series {
		if s.name != "" {
			named = append(named, s)
			width = max(width, len(s.name))
		}
	}
	if len(named) == 0 {
		return
	}
	const row, sample = 20.0, 30.0
	bw := sample + 20 + float64(width)*7 // about 7 px a character at 13 px
	bh := row*float64(len(named)) + 8
	bx := ax + aw - bw - 8
	by := ay + ah - bh - 8
	if p.legendTop {
		by = ay + 8
	}
	fmt.Fprintf(&d.b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="#fff" fill-opacity="0.85" stroke="#999"/>`+"\n", bx, by, bw, bh)
	for i, s := range named {
		y := by + 4 + row*float64(i) + row/2
		if s.line {
			fmt.Fprintf(&d.b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5"`, bx+6, y, bx+6+sample, y, s.color)
			if s.dashed {
				d.b.WriteString(` stroke-dasharray="6 4"`)
			}
			d.b.WriteString("/>\n")
		}
		if s.marker != "" {
			fmt.Fprintf(&d.b, `<g fill="%s">`, s.color)
			d.marker(s.marker, bx+6+sample/2, y, max(s.radius, 3))
			d.b.WriteString("</g>\n")
		}
		d.text(bx+12+sample, y+4, "start", s.name, 0, 0)
	}
}

// ranges returns the axes' limits: the panel's where set, else the data's.
func (p *panel) ranges() (xlo, xhi, ylo, yhi float64) {
	xlo, xhi, ylo, yhi = math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	see := func(x, y float64) {
		xlo, xhi = math.Min(xlo, x), math.Max(xhi, x)
		ylo, yhi = math.Min(ylo, y), math.Max(yhi, y)
	}
	for _, s := range p.series {
		for _, pt := range s.pts {
			see(pt.X, pt.Y)
		}
	}
	if hg := p.hist; hg != nil {
		for i, c := range hg.counts {
			see(hg.edges[i], 0)
			see(hg.edges[i+1], c)
		}
	}
	set := func(v *float64, fixed float64) {
		if !math.IsNaN(fixed) {
			*v = fixed
		}
	}
	set(&xlo, p.xMin)
	set(&xhi, p.xMax)
	set(&ylo, p.yMin)
	set(&yhi, p.yMax)
	widen := func(lo, hi *float64) {
		if math.IsInf(*lo, 0) || math.IsInf(*hi, 0) || math.IsNaN(*lo) || math.IsNaN(*hi) {
			*lo, *hi = 0, 1
		}
		if *lo == *hi {
			d := math.Max(math.Abs(*lo)*0.1, 0.5)
			*lo, *hi = *lo-d, *hi+d
		}
	}
	widen(&xlo, &xhi)
	if p.logY {
		if ylo <= 0 || yhi <= 0 || math.IsInf(ylo, 0) || math.IsInf(yhi, 0) {
			ylo, yhi = 1, 10
		}
		if ylo == yhi {
			ylo, yhi = ylo/2, yhi*2
		}
		// Some room above and below the curve, in ratios.
		r := math.Pow(yhi/ylo, 0.04)
		return xlo, xhi, ylo / r, yhi * r
	}
	if p.hist != nil && math.IsNaN(p.yMax) {
		yhi *= 1.05 // room above the tallest bar
	}
	widen(&ylo, &yhi)
	return xlo, xhi, ylo, yhi
}

// tick is an axis value and its label.
type tick struct {
	v     float64
	label string
}

// linearTicks returns about six round values (1, 2 or 5 times a power of
// ten apart) between lo and hi; whole numbers only when integer is set.
func linearTicks(lo, hi float64, integer bool) []tick {
	step := niceStep((hi - lo) / 6)
	if integer {
		step = math.Max(1, math.Round(step))
	}
	prec := max(0, -int(math.Floor(math.Log10(step)+1e-9)))
	var ts []tick
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		if math.Abs(v) < step*1e-9 {
			v = 0 // not -0 or 1e-17
		}
		label := strconv.FormatFloat(v, 'f', prec, 64)
		if math.Abs(v) >= 1e6 || (v != 0 && math.Abs(v) < 1e-4) {
			label = strconv.FormatFloat(v, 'g', 4, 64)
		}
		ts = append(ts, tick{v, label})
	}
	return ts
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if !(x > 0) || math.IsInf(x, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if x <= m*p*(1+1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// logTicks labels a log axis with powers of ten when lo..hi spans one, and
// with round values otherwise.
func logTicks(lo, hi float64) []tick {
	var ts []tick
	for e := math.Ceil(math.Log10(lo) - 1e-9); e <= math.Log10(hi)+1e-9; e++ {
		v := math.Pow(10, e)
		ts = append(ts, tick{v, strconv.FormatFloat(v, 'g', -1, 64)})
	}
	if len(ts) >= 2 {
		return ts
	}
	ts = ts[:0]
	for _, t := range linearTicks(lo, hi, false) {
		if t.v > 0 {
			ts = append(ts, t)
		}
	}
	return ts
}
