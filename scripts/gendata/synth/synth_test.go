package synth

import (
	"bytes"
	"math"
	"strconv"
	"strings"
	"testing"
)

func TestWriteCSVDeterministicAndTrue(t *testing.T) {
	for _, kind := range Kinds {
		var a, b bytes.Buffer
		truth, err := WriteCSV(&a, kind, 2000, 7)
		if err != nil {
			t.Fatal(err)
		}
		WriteCSV(&b, kind, 2000, 7)
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: same seed, different bytes", kind)
		}
		lines := strings.Split(strings.TrimSpace(a.String()), "\n")
		if len(lines) != 2001 || lines[0] != strings.Join(append(truth.Names, truth.Target), ",") {
			t.Fatalf("%s: %d lines, header %q", kind, len(lines), lines[0])
		}
		// The target follows the documented truth: residuals have the
		// stated noise (regression) or the labels agree with the score.
		var sum2, agree float64
		for _, l := range lines[1:] {
			f := strings.Split(l, ",")
			x := make([]float64, len(truth.Names))
			for i := range x {
				x[i], _ = strconv.ParseFloat(f[i], 64)
			}
			y, _ := strconv.ParseFloat(f[len(f)-1], 64)
			z := truth.Score(x)
			if truth.Logistic {
				if (z > 0) == (y == 1) {
					agree++
				}
				continue
			}
			sum2 += (y - z) * (y - z)
		}
		n := float64(len(lines) - 1)
		switch {
		case truth.Separable && agree != n:
			t.Errorf("%s: %v of %v labels agree with the score", kind, agree, n)
		case truth.Logistic && !truth.Separable && (agree/n < 0.8 || agree/n > 0.9):
			t.Errorf("%s: the score predicts %.3f of the labels, want about 0.85", kind, agree/n)
		case !truth.Logistic && math.Abs(math.Sqrt(sum2/n)/truth.Noise-1) > 0.05:
			t.Errorf("%s: residual sd %.3f, truth %.3f", kind, math.Sqrt(sum2/n), truth.Noise)
		}
	}
	if _, err := For("nope"); err == nil {
		t.Error("unknown kind accepted")
	}
}
