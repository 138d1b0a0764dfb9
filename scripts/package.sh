#!/usr/bin/env bash
# Builds the linnet Debian packages into dist/: stripped CGO-free binaries
# for amd64, arm64 and armhf (GOARM=7), packed by nfpm with the systemd
# unit, the default config and the reference mosquitto.conf.
#
#   scripts/package.sh [ARCH...]      ARCH: amd64 arm64 armhf (default: all)
#
# Environment: VERSION (default: from the last v* tag, see below), GO
# (default go).
# nfpm runs as a Go module at a pinned version, fetched like any module.
set -euo pipefail

NFPM=github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.48.0
MAX_BYTES=$((15 * 1024 * 1024)) # every stripped binary stays under 15 MB

cd "$(dirname "$0")/.."
GO=${GO:-go}
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(amd64 arm64 armhf)

# A release tag v1.2.3 gives 1.2.3, a commit after it 1.2.3+4.gabcdef0;
# without a tag, 0.0.0~git<date>.<commit> (dpkg versions start with a digit).
version=${VERSION:-$(git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || true)}
version=${version#v}
case "$version" in
[0-9]*) version=$(printf '%s' "$version" | sed 's/-/+/; s/-/./g') ;;
*) version="0.0.0~git$(date -u +%Y%m%d).$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" ;;
esac
# dpkg allows [A-Za-z0-9.+~-] only.
version=$(printf '%s' "$version" | tr -c 'A-Za-z0-9.+~-' '.')

stage=dist/.stage
mkdir -p dist "$stage"

# The default config is the daemon's documented example when the tree has
# it; until then, a commented placeholder that leaves every default alone.
if [ -f scripts/linnet.toml ]; then
	cp scripts/linnet.toml "$stage/linnet.toml"
else
	cat >"$stage/linnet.toml" <<'EOF'
# linnet configuration. Every key is optional: with none set, linnet starts
# its embedded MQTT broker on 127.0.0.1:1883 and serves metrics on
# 127.0.0.1:9464. Flags and LINNET_* environment variables override this
# file; `linnet run --print-config` shows the result.

# gateway = "gw-01"              # default: this machine's id
# trust = ["/etc/linnet/fleet.pub"]  # public keys accepted for OTA models

# [mqtt]
# broker = "tcp://127.0.0.1:1883"   # use a broker instead of the embedded one
# share_group = "linnet"            # $share/<group>/ subscriptions
# username = "linnet"
# password_file = "/etc/linnet/mqtt.password"

# [metrics]
# listen = "127.0.0.1:9464"
EOF
fi

for arch in "${archs[@]}"; do
	case "$arch" in
	amd64) goarch=amd64 goarm= ;;
	arm64) goarch=arm64 goarm= ;;
	armhf) goarch=arm goarm=7 ;;
	*)
		echo "package.sh: unknown architecture $arch (want amd64, arm64, armhf)" >&2
		exit 2
		;;
	esac
	bin=dist/linnet-linux-$arch
	CGO_ENABLED=0 GOOS=linux GOARCH=$goarch GOARM=$goarm \
		"$GO" build -trimpath -ldflags "-s -w -X main.version=$version" -o "$bin" ./cmd/linnet
	size=$(stat -c %s "$bin")
	awk -v b="$bin" -v s="$size" 'BEGIN { printf "%-26s %9d bytes  %5.1f MB\n", b, s, s / 1048576 }'
	if [ "$size" -ge "$MAX_BYTES" ]; then
		echo "package.sh: $bin is $size bytes, over the 15 MB budget" >&2
		exit 1
	fi
	cp "$bin" "$stage/linnet"
	deb=dist/linnet_${version}_${arch}.deb
	rm -f dist/linnet_*_"$arch".deb # one package per architecture in dist/
	LINNET_DEB_ARCH=$arch LINNET_VERSION=$version \
		"$GO" run "$NFPM" package --config scripts/nfpm.yaml --packager deb --target "$deb" >/dev/null
	echo "$deb"
done
rm -rf "$stage"
