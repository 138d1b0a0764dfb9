package onnx

import (
	"errors"
	"testing"

	"github.com/linnet-edge/linnet/model"
)

// FuzzImport: no input makes Import or ImportJSON panic, and whatever
// they accept is a valid model that exports again.
func FuzzImport(f *testing.F) {
	for i, loss := range []model.Loss{model.Squared, model.Logistic} {
		m := testModel(3+i, loss, uint64(20+i))
		b, err := Export(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		j, err := ExportJSON(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(j)
	}
	pre, err := Export(preprocessedModel(model.MissingImpute))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pre)
	f.Add([]byte(`{"kind":"linear","features":["a"],"coef":[1],"intercept":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var m *model.Model
		var err error
		if IsJSON(b) {
			m, err = ImportJSON(b)
		} else {
			m, _, err = Import(b, Options{})
		}
		if err != nil {
			return
		}
		if _, err := Export(m); err != nil {
			t.Fatalf("an imported model does not export: %v", err)
		}
		if _, err := ExportJSON(m); err != nil && (m.Preprocessing == nil || !errors.Is(err, ErrUnsupported)) {
			t.Fatalf("an imported model does not export as JSON: %v", err)
		}
	})
}
