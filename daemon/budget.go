package daemon

// budgetShares splits pipeline.queue_bytes between the readings the daemon
// holds until they are done (intake) and the answers waiting for the
// broker's acknowledgement, so that every copy of them in this process
// fits the budget.
//
// With an external broker the process holds one copy of each: three
// quarters for readings, a quarter for answers. The embedded broker keeps
// its own copy of each reading until the daemon acknowledges it, and
// makes several more of every message it passes on (the packet it reads,
// a copy per subscriber, the encoded packet it writes), garbage only once
// the collector has seen them: under a flood of 200 KB batches these took
// as much room again as the daemon's own (scripts/flood-daemon.sh), so
// the daemon takes a quarter for readings and a sixteenth for answers.
func budgetShares(total int64, embedded bool) (intake, answers int64) {
	if embedded {
		return total / 4, total / 16
	}
	return total / 4 * 3, total / 4
}
