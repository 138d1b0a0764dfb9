package daemon

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/linnet-edge/linnet/daemon/wire"
)

// metrics are per Service (its own registry), so tests can run several
// daemons in one process. What belongs to one served model carries a
// model label.
type metrics struct {
	reg *prometheus.Registry

	in          prometheus.Counter
	predictions *prometheus.CounterVec // by model, as the others below
	rejected    *prometheus.CounterVec
	predictSec  prometheus.Histogram
	learn       *prometheus.CounterVec
	loss        *prometheus.GaugeVec
	version     *prometheus.GaugeVec
	kernels     *prometheus.GaugeVec
	reconnects  prometheus.Counter
	connected   prometheus.Gauge
	subackFail  prometheus.Counter
	pubErrors   prometheus.Counter
	errDropped  prometheus.Counter
	checkpoints *prometheus.CounterVec
	swaps       *prometheus.CounterVec
	imputed     prometheus.Counter // see preprocess.go
	unseen      prometheus.Counter
}

func newMetrics(queueDepth, queueCap, inflight, retries func() float64) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.in = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_messages_in_total", Help: "MQTT messages received on the input subscriptions."})
	model := []string{"model"}
	m.predictions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_predictions_total", Help: "Predictions published (a batch counts each reading)."}, model)
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_rejected_total", Help: "Messages rejected, by reason; each one also goes to the errors topic."}, []string{"reason"})
	m.predictSec = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "linnet_predict_seconds", Help: "Time from dequeue to publish for one message (decode, predict, encode).",
		Buckets: []float64{2e-6, 5e-6, 1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3, 2e-2}})
	m.learn = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_learn_updates_total", Help: "Online learning updates from labelled readings."}, model)
	m.loss = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linnet_progressive_loss", Help: "Running progressive-validation loss of the online learner."}, model)
	m.version = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linnet_model_version", Help: "Version of the serving model (0: none)."}, model)
	m.kernels = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "linnet_kernel_info", Help: "The SIMD kernel chosen for each op (value 1)."}, []string{"op", "kernel"})
	m.reconnects = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_mqtt_reconnects_total", Help: "Connections to the broker after the first."})
	m.connected = prometheus.NewGauge(prometheus.GaugeOpts{Name: "linnet_mqtt_connected", Help: "1 while connected and subscribed."})
	m.subackFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_mqtt_subscribe_failures_total", Help: "Subscriptions refused by the broker or not acknowledged in time."})
	m.pubErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_publish_errors_total", Help: "Publishes that failed or were abandoned at shutdown."})
	m.errDropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "linnet_error_reports_dropped_total", Help: "Errors-topic messages not sent because their queue was full (the rejection is still counted)."})
	m.checkpoints = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_checkpoints_total", Help: "Learner checkpoints written to the store."}, model)
	m.swaps = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "linnet_model_swaps_total", Help: "Serving model replacements (activation or re-quantization)."}, model)
	for _, c := range []prometheus.Collector{m.in, m.predictions, m.rejected, m.predictSec, m.learn, m.loss, m.version, m.kernels,
		m.reconnects, m.connected, m.subackFail, m.pubErrors, m.errDropped, m.checkpoints, m.swaps} {
		f(c)
	}
	for _, r := range wire.Reasons {
		m.rejected.WithLabelValues(r)
	}
	m.imputed, m.unseen = preprocessCounters(f)
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_queue_depth", Help: "Messages waiting for a worker."}, queueDepth))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_queue_capacity", Help: "Messages the intake queues hold before dropping."}, queueCap))
	f(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "linnet_mqtt_inflight", Help: "Outgoing publishes not yet acknowledged by the broker (bounded by mqtt.max_inflight)."}, inflight))
	f(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "linnet_publish_retries_total", Help: "QoS 1 publishes sent again after op_timeout without an acknowledgement while connected."}, retries))
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// serveHTTP serves /metrics, /healthz and the live view (live, every
// other path) on ln until ctx ends.
func serveHTTP(ctx context.Context, ln net.Listener, reg *prometheus.Registry, health func() error, live http.Handler) error {
	mux := http.NewServeMux()
	if live != nil {
		mux.Handle("/", live)
	}
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := health(); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
