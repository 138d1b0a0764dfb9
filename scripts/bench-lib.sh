# Shared by the daemon benchmark scripts (sourced, not run): a work
# directory removed on exit with every process in $pids, and a mosquitto
# from the reference scripts/mosquitto.conf on $PORT without persistence.

work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

# start_mosquitto starts the test broker on $PORT, logging to $work/mosquitto.log.
start_mosquitto() {
	local mosq
	mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
	[ -x "$mosq" ] || { echo "$0: mosquitto not found (apt-get install mosquitto)" >&2; exit 1; }
	sed -e "s/^listener 1883 127.0.0.1/listener $PORT 127.0.0.1/" -e 's/^persistence true/persistence false/' \
		-e '/^persistence_location/d' scripts/mosquitto.conf > "$work/mosquitto.conf"
	[ "$(id -u)" = 0 ] && echo "user root" >> "$work/mosquitto.conf"
	"$mosq" -c "$work/mosquitto.conf" > "$work/mosquitto.log" 2>&1 &
	pids+=($!)
}

# wait_healthy waits for the daemon's /healthz on $METRICS; if it does not
# come up, it prints the log $1 and exits.
wait_healthy() {
	for _ in $(seq 200); do
		curl -fs "http://$METRICS/healthz" >/dev/null 2>&1 && return
		sleep 0.05
	done
	curl -fs "http://$METRICS/healthz" >/dev/null || { cat "$1" >&2; exit 1; }
}
