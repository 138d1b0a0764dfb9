// Package mqttc is the MQTT plumbing that the daemon and its clients
// (linnet send, linnet push) share: client options with TLS and
// credentials, token waits that always have a deadline, the bounded
// publisher, subscriptions checked against their SUBACK, and topic
// matching. It knows nothing of linnet's payloads (package wire) or of the
// service (package daemon).
//
// paho's traps this package exists for: Token.Wait can hang forever, and
// Disconnect too (Wait and Disconnect here never do); QoS 1 publishes pile
// up in memory while the broker is away (Publisher bounds them); a refused
// subscription is reported only in the token's result (Subscribe checks
// it).
package mqttc
