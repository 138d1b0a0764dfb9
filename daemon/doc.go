// Package daemon owns linnet's service: configuration, the MQTT client and
// the embedded broker, payload codecs, the predict/learn pipeline, health
// and metrics, and systemd notification.
//
// Lifecycle: New validates the whole Config; Run connects, serves and, when
// its context ends, shuts down in order (stop intake, drain, checkpoint,
// publish offline, disconnect with a deadline). The paho handler only
// routes a message into the bounded queue of the worker that owns its
// device (readings of one device stay in order); workers decode, predict,
// publish and learn.
//
// Over-the-air model updates (ota.go, rollout.go) run on their own
// goroutine: the paho route handler keeps the newest model file per OTA
// topic and returns; checks, the shadow run, the store transaction and the
// swap happen there, and the guarded rollout is fed by the workers through
// one non-blocking hook. Push (push.go) is the client side, `linnet push`.
package daemon
