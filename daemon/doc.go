// Package daemon is linnet's service: its lifecycle and the path of a
// reading, intake -> workers -> publish -> ordered acknowledgement
// (daemon.go), plus configuration, the embedded broker, metrics and
// systemd notification.
//
// What it builds on, each in its own package:
//
//	daemon/serving  the serving model, its learner and checkpoints (one Owner)
//	daemon/wire     payload formats: reading decode, prediction/error/status/OTA-result encoding, reasons
//	daemon/mqttc    MQTT plumbing shared with the clients: options, token waits, bounded publisher
//
// Lifecycle: New validates the whole Config; Run connects, serves and, when
// its context ends, shuts down in order (stop intake, drain, checkpoint,
// publish offline, disconnect with a deadline). The paho handler only
// routes a message into the bounded queue of the worker that owns its
// device (readings of one device stay in order); workers decode, predict,
// publish and learn.
//
// Over-the-air model updates (ota.go, rollout.go) run on their own
// goroutine and change the serving model only through the serving Owner.
// The clients of the daemon (linnet send, linnet push) are package client.
package daemon
