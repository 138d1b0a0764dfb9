package wire

import "fmt"

// Reasons a message is rejected: the label of linnet_rejected_total and the
// "reason" of the errors topic. The set is closed so the metric stays small.
const (
	ReasonOversize     = "oversize"      // payload larger than payload.max_bytes
	ReasonMalformed    = "malformed"     // not the subscription's format
	ReasonFeatureCount = "feature_count" // wrong number of values
	ReasonFeatureNames = "feature_names" // unknown feature names
	ReasonMissing      = "missing"       // a feature is null, absent by name, or an empty CSV cell
	ReasonNonFinite    = "non_finite"    // NaN, Inf, or out of float32 range
	ReasonBadID        = "bad_id"        // id or ts not a short string (valid UTF-8) or number
	ReasonBadLabel     = "bad_label"     // label not finite, or not 0/1 for a classifier; or a label or feature too implausible to learn from (still predicted)
	ReasonBatchSize    = "batch_size"    // empty batch or more than payload.max_batch
	ReasonNoModel      = "no_model"      // nothing to serve yet
	ReasonQueueFull    = "queue_full"    // intake queue full (count or bytes): message dropped
	ReasonBadTopic     = "bad_topic"     // no device level in the topic
)

// Reasons lists every rejection reason, for metrics initialisation.
var Reasons = []string{ReasonOversize, ReasonMalformed, ReasonFeatureCount, ReasonFeatureNames, ReasonMissing,
	ReasonNonFinite, ReasonBadID, ReasonBadLabel, ReasonBatchSize, ReasonNoModel, ReasonQueueFull, ReasonBadTopic}

// Reject is why one message was refused; it becomes an errors-topic
// message.
type Reject struct {
	Reason string
	Detail string
	ID     []byte // the message's id as sent (valid JSON) when it could be read
}

func (r *Reject) Error() string { return r.Reason + ": " + r.Detail }

// Rejectf builds a Reject with a formatted detail.
func Rejectf(reason, format string, a ...any) *Reject {
	return &Reject{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}
