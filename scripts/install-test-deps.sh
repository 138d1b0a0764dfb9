#!/usr/bin/env bash
# Installs what `make test` needs when it is missing: qemu-user-static for the
# arm64/armv7 runs, mosquitto and its clients for the MQTT integration tests,
# chromium for the live view's browser test.
# Debian/Ubuntu only (apt-get); run as root or with sudo available.
set -euo pipefail

need=()
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need+=(mosquitto)
command -v mosquitto_pub >/dev/null || need+=(mosquitto-clients)
command -v systemd-analyze >/dev/null || need+=(systemd)
command -v file >/dev/null || need+=(file)
command -v chromium >/dev/null || need+=(chromium)
/usr/bin/python3 -c 'import onnx, numpy' 2>/dev/null || need+=(python3-onnx python3-numpy)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "installing ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The mosquitto package starts a system broker on port 1883; the tests start
# their own on free ports and the embedded broker wants 1883, so stop it.
if command -v systemctl >/dev/null && systemctl is-active --quiet mosquitto 2>/dev/null; then
	$sudo systemctl stop mosquitto || true
fi
