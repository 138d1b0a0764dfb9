// Package wire owns linnet's MQTT payload formats, shared by the daemon
// and its clients: decoding readings (JSON with a fast path for the
// common shape, CSV, raw float32), encoding predictions, batches, error
// reports, the status message and OTA results, and the closed set of
// rejection reasons. A client parses what the daemon writes with the
// types here, never by the order of keys.
//
// Every message encoded here is valid JSON whatever the input: strings
// are escaped, and an id or ts is echoed only when it is a JSON number or
// a valid UTF-8 string (otherwise the reading is rejected as bad_id).
package wire
