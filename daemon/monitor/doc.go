// Package monitor owns linnet's view of model quality while the daemon
// serves: drift detectors on the features a model sees (against the
// training statistics the model carries) and on its prediction loss, the
// alert state machine and its record, the Prometheus gauges for both, and
// the read-only live view (a JSON API and an embedded web page).
//
// The detectors are pure: they see readings, losses and the clock, and
// return alert transitions. They never publish, freeze a learner or roll
// back; the daemon does that with what they return (Config.Response says
// what the operator asked for). The live view reads the daemon through
// the Source interface and never touches the serving path.
//
// For the daemon's monitoring hook, Watch bundles one served model's
// detectors and the series of the live view, Log keeps the firing and
// recently cleared alerts, and Gauges exports both to Prometheus.
//
// Costs: FeatureDrift.Observe adds a reading to a window sum (one vector
// kernel call) and evaluates once per window; LossDrift.Observe adds a
// loss to a block sum and runs one Page-Hinkley step per block.
// BenchmarkObserve compares them with one prediction of the same model.
package monitor
