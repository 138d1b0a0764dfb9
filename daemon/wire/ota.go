package wire

import "strings"

// OTA result reasons: the "reason" of an OTA result message and the label
// of linnet_ota_results_total.
const (
	OTAApplied          = "applied"           // stored, activated and serving
	OTAAlreadyActive    = "already_active"    // the active model's own file again
	OTAOversize         = "oversize"          // larger than ota.max_bytes
	OTAMalformed        = "malformed"         // not a .lnm file, truncated, inconsistent
	OTACorrupt          = "corrupt"           // CRC-32C mismatch: damaged or altered
	OTAUnsigned         = "unsigned"          // no signature and ota.allow_unsigned is off
	OTAUntrustedKey     = "untrusted_key"     // signed by a key not among --trust
	OTABadSignature     = "bad_signature"     // a trusted key's id, but the signature fails
	OTANotNewer         = "not_newer"         // version not above the active one
	OTARollbackUnsigned = "rollback_unsigned" // older version flagged rollback without a verified signature
	OTAWithdrawn        = "withdrawn"         // this version was rolled back before
	OTASchema           = "schema"            // features or kind differ from the serving model
	OTAShadow           = "shadow"            // the shadow run found NaN/Inf or absurd outputs
	OTAStore            = "store"             // the store refused it (e.g. the version exists with other bytes)
	OTARolledBack       = "rolled_back"       // guarded rollout: worse than the previous model, rolled back
	OTAGuardPassed      = "guard_passed"      // guarded rollout: the new model stays
	OTAReplay           = "replay"            // a signed rollback file this gateway applied before
	OTARollbackStale    = "rollback_stale"    // a rollback file expired, for another gateway, or from a version not served
	OTALegacyRollback   = "legacy_rollback"   // a model file with the old rollback flag: bound to nothing, refused
)

// OTAReasons lists every result reason, for metrics initialisation.
var OTAReasons = []string{OTAApplied, OTAAlreadyActive, OTAOversize, OTAMalformed, OTACorrupt, OTAUnsigned,
	OTAUntrustedKey, OTABadSignature, OTANotNewer, OTARollbackUnsigned, OTAWithdrawn, OTASchema, OTAShadow,
	OTAStore, OTARolledBack, OTAGuardPassed, OTAReplay, OTARollbackStale, OTALegacyRollback}

// Default OTA topics ({gateway} is replaced by the gateway id).
const (
	DefaultFleetTopic   = "linnet/ota/model"
	DefaultGatewayTopic = "linnet/{gateway}/ota/model"
	DefaultResultTopic  = "linnet/{gateway}/ota/result"
	DefaultStatusTopic  = "linnet/{gateway}/status"
)

// ModelTopic is a named model's OTA topic template from the configured
// fleet or gateway template: the name in place of {model}, else in place
// of a last level "model" (linnet/ota/model -> linnet/ota/hvac), else as
// a new last level.
func ModelTopic(tmpl, model string) string {
	if !strings.Contains(tmpl, "{model}") {
		if base, ok := strings.CutSuffix(tmpl, "/model"); ok {
			tmpl = base + "/{model}"
		} else {
			tmpl += "/{model}"
		}
	}
	return strings.ReplaceAll(tmpl, "{model}", model)
}
