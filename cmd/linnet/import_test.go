package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// TestImportExportCLI: JSON -> .lnm -> ONNX -> .lnm -> JSON keeps the
// model, and the flags name what the files do not.
func TestImportExportCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "coef.json")
	if err := os.WriteFile(src, []byte(`{"kind":"logistic","features":["t","h"],"coef":[0.5,-1.5],"intercept":0.25,"mean":[20,50],"scale":[5,10]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b, back := filepath.Join(dir, "a.lnm"), filepath.Join(dir, "b.lnm"), filepath.Join(dir, "back.json")
	onnxFile := filepath.Join(dir, "a.onnx")
	mustLinnet(t, "import", src, "--out", a, "--target", "fault", "--version", "5")
	mustLinnet(t, "export", a, "--format", "onnx", "--out", onnxFile)
	out := mustLinnet(t, "import", onnxFile, "--out", b, "--features", "temp,hum", "--version", "6")
	if !strings.Contains(out, `P(class "1")`) || !strings.Contains(out, "LinearClassifier") {
		t.Errorf("import printed %q", out)
	}
	mustLinnet(t, "export", b, "--format", "json", "--out", back)
	ma, _, err := model.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	mb, _, err := model.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if ma.Version != 5 || mb.Version != 6 || mb.Target != "fault" || mb.Features[0] != "temp" || mb.Loss != model.Logistic {
		t.Errorf("versions %d %d, target %q, features %v, loss %s", ma.Version, mb.Version, mb.Target, mb.Features, mb.Loss)
	}
	x := []float32{23, 41}
	if pa, pb := model.NewPredictor(ma).Predict(x), model.NewPredictor(mb).Predict(x); pa != pb {
		t.Errorf("predictions %v and %v", pa, pb)
	}
	j, err := os.ReadFile(back)
	if err != nil || !strings.Contains(string(j), `"temp"`) {
		t.Errorf("exported JSON %s, %v", j, err)
	}

	// A refused file names why.
	bad := filepath.Join(dir, "bad.onnx")
	if err := os.WriteFile(bad, []byte("not a protobuf at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := linnet(t, "import", bad, "--out", filepath.Join(dir, "c.lnm")); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Errorf("import of garbage: %v", err)
	}
}

func mustLinnet(t *testing.T, args ...string) string {
	t.Helper()
	out, err := linnet(t, args...)
	if err != nil {
		t.Fatalf("linnet %s: %v", strings.Join(args, " "), err)
	}
	return out
}
