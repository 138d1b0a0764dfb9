package wire

import (
	"encoding/json"
	"strconv"

	"github.com/linnet-edge/linnet/model"
)

// Status is the retained status message of a gateway (and, with state
// "offline", its will).
type Status struct {
	State           string            `json:"state"` // online or offline
	Gateway         string            `json:"gateway"`
	ModelVersion    *int64            `json:"model_version"` // null: no model
	Scheme          string            `json:"scheme,omitempty"`
	Features        int               `json:"features,omitempty"`
	Kernels         map[string]string `json:"kernels"`
	Updates         *int64            `json:"updates,omitempty"` // online learning on
	ProgressiveLoss *float64          `json:"progressive_loss,omitempty"`
	TS              int64             `json:"ts"`
	// LearningFrozen: the learner diverged, its last good checkpoint was
	// restored and learning stopped.
	LearningFrozen bool `json:"learning_frozen,omitempty"`
	// Learning is "per_device" when each device learns its own delta
	// (empty otherwise); DevicesResident are the device states in memory,
	// DevicesPending those evicted and not yet saved.
	Learning        string `json:"learning,omitempty"`
	DevicesResident *int   `json:"devices_resident,omitempty"`
	DevicesPending  *int   `json:"devices_pending,omitempty"`
	// Problems are what /healthz fails with, each with its reason.
	Problems []string `json:"problems,omitempty"`
	// StoreRepair says what the store found damaged or lost at start and
	// repaired, and what it lost.
	StoreRepair string `json:"store_repair,omitempty"`
	// Models lists every served model; the fields above describe the
	// first (the "default" model unless [[models]] names others).
	Models []ModelStatus `json:"models,omitempty"`
}

// ModelStatus is one served model in the status message.
type ModelStatus struct {
	Name            string   `json:"name"`
	ModelVersion    *int64   `json:"model_version"` // null: no model
	Scheme          string   `json:"scheme,omitempty"`
	Features        int      `json:"features,omitempty"`
	Learning        string   `json:"learning"` // off, shared or per_device
	Updates         *int64   `json:"updates,omitempty"`
	ProgressiveLoss *float64 `json:"progressive_loss,omitempty"`
	LearningFrozen  bool     `json:"learning_frozen,omitempty"`
	DevicesResident *int     `json:"devices_resident,omitempty"`
	DevicesPending  *int     `json:"devices_pending,omitempty"`
}

// LearnPerDevice is Status.Learning with per-device learning.
const LearnPerDevice = "per_device"

// Encode is the status message's payload.
func (s *Status) Encode() []byte {
	b, err := json.Marshal(s)
	if err != nil {
		panic("wire: status: " + err.Error()) // strings, ints and finite floats only
	}
	return b
}

// OTAResult is one over-the-air decision, published on the gateway's
// OTA result topic.
type OTAResult struct {
	Version  *int64 `json:"version"` // null when the file did not decode
	Accepted bool   `json:"accepted"`
	Reason   string `json:"reason"`
	Detail   string `json:"detail,omitempty"`
	Gateway  string `json:"gateway"`
	Model    string `json:"model,omitempty"` // the model the decision is about
	Topic    string `json:"topic,omitempty"`
	Active   int64  `json:"active"` // the active version after the decision
	Rollback bool   `json:"rollback,omitempty"`
	TS       int64  `json:"ts"`
}

// Encode is the result message's payload.
func (r *OTAResult) Encode() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		panic("wire: ota result: " + err.Error())
	}
	return b
}

// Prediction is a prediction message as a client reads it; a batch
// answer has Batch set and per-reading fields inside it.
type Prediction struct {
	ID           json.RawMessage `json:"id"`
	Device       string          `json:"device"`
	Model        string          `json:"model"` // the served model's name
	Prediction   float64         `json:"prediction"`
	Class        *int            `json:"class"`
	ModelVersion int64           `json:"model_version"`
	TS           json.RawMessage `json:"ts"`
	Batch        []Prediction    `json:"batch"`
	// Imputed names the inputs the model's preprocessing filled in.
	Imputed []string `json:"imputed"`
	// Bias, Score and Explain are set when the reading asked for an
	// explanation: Bias plus every feature's contribution is Score, the
	// prediction or a classifier's logit; Explain holds the largest.
	Bias    *float64             `json:"bias"`
	Score   *float64             `json:"score"`
	Explain []model.Contribution `json:"explain"`
}

// Error is an errors-topic message as a client reads it.
type Error struct {
	Topic  string          `json:"topic"`
	ID     json.RawMessage `json:"id"`
	Reason string          `json:"reason"`
	Detail string          `json:"detail"`
	TS     int64           `json:"ts"`
}

// IntID reads an id sent as a number or a decimal string; ok is false for
// anything else (no id, another kind of string).
func IntID(id json.RawMessage) (int, bool) {
	if len(id) == 0 {
		return 0, false
	}
	if id[0] == '"' {
		var s string
		if json.Unmarshal(id, &s) != nil {
			return 0, false
		}
		n, err := strconv.Atoi(s)
		return n, err == nil
	}
	n, err := strconv.Atoi(string(id))
	return n, err == nil
}
