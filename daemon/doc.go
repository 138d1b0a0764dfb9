// Package daemon is linnet's service: its lifecycle and the path of a
// reading, intake -> workers -> publish -> ordered acknowledgement
// (daemon.go), plus configuration, the embedded broker, metrics and
// systemd notification.
//
// What it builds on, each in its own package:
//
//	daemon/serving        the serving model, its learner and checkpoints (one Owner)
//	daemon/wire           payload formats: reading decode, prediction/error/status/OTA-result encoding, reasons
//	daemon/mqttc          MQTT plumbing shared with the clients: options, token waits, bounded publisher
//	daemon/hooks          the extension API (Hook, Host, Hooks), after mochi-mqtt's
//	daemon/ota            hook: over-the-air updates, shadow run, guarded rollout
//	daemon/homeassistant  hook: Home Assistant discovery
//
// Lifecycle: New validates the whole Config; Run connects, serves and, when
// its context ends, shuts down in order (stop intake, drain, checkpoint,
// publish offline, disconnect with a deadline). The paho handler only
// routes a message into the bounded queue of the worker that owns its
// device (readings of one device stay in order); workers decode, predict,
// publish and learn.
//
// Hooks see the service only through hooks.Host; OTA changes the serving
// model through the serving Owner's methods. The clients of the daemon
// (linnet send, linnet push) are package client.
package daemon
