// Package client holds linnet's MQTT clients of the daemon: Send (the
// demo client and load generator behind `linnet send`) and Push (`linnet
// push`, over-the-air model updates). They speak the daemon's formats
// through package wire and share its MQTT plumbing (package mqttc); they
// are not part of the service.
package client
