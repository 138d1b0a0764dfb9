package model_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/linnet-edge/linnet/model"
)

// Train a model from CSV, then keep it learning online, as the daemon does.
func Example() {
	csv := "temp,load,watts\n"
	for i := range 200 {
		t, l := float64(15+i%20), float64(i%7)
		csv += fmt.Sprintf("%g,%g,%g\n", t, l, 100+3*t+20*l)
	}
	r, err := model.NewCSVReader(strings.NewReader(csv), model.CSVOptions{Target: "watts"})
	if err != nil {
		panic(err)
	}
	m, rep, err := model.Train(context.Background(), r, model.TrainConfig{Epochs: 50})
	if err != nil {
		panic(err)
	}
	fmt.Printf("trained on %d rows; predicts %.0f for temp 20, load 3\n",
		rep.RowsTrain, model.NewPredictor(m).Predict([]float32{20, 3}))

	l := model.NewLearner(m, model.LearnerConfig{PriorRows: rep.RowsTrain})
	l.Learn([]float32{20, 3}, 220) // predict, then learn
	state, _ := l.MarshalBinary()  // checkpoint; UnmarshalBinary resumes exactly
	fmt.Println(l.Updates(), len(state) > 0)
	// Output:
	// trained on 200 rows; predicts 220 for temp 20, load 3
	// 1 true
}
