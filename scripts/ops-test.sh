#!/usr/bin/env bash
# Operations checks, run by `make test`:
#   1. the .deb files (scripts/package.sh, the only build here): amd64
#      installs with dpkg, every file lands where
#      README.md says, `linnet version` runs from
#      /usr/bin, purge removes it all; arm64/armhf hold binaries of their
#      architecture; stripped binaries under 15 MB; each package's copyright
#      file has the licence of every module its binary links;
#   2. systemd-analyze verify and security on the unit (exposure <= 1.5);
#   3. `linnet selftest` here, under qemu (arm64 cortex-a72 and neoverse-n1,
#      armv7), and a forced failure exits non-zero naming the kernel;
#   4. the reference mosquitto.conf loads as a drop-in and carries a message.
# The install check needs root (or sudo) and refuses to touch a linnet
# package that was installed before it started.
set -uo pipefail

cd "$(dirname "$0")/.."
MAX_EXPOSURE=1.5
tmp=$(mktemp -d)
failures=0
installed=""
broker_pid=""

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo="sudo -n"; else sudo=none; fi
fi

cleanup() {
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null
	[ -n "$installed" ] && $sudo dpkg --purge linnet >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() { printf 'ok    %s\n' "$*"; }
fail() {
	printf 'FAIL  %s\n' "$*"
	failures=$((failures + 1))
}
skip() { printf 'SKIP  %s\n' "$*"; }
step() { printf '\n== %s\n' "$*"; }

missing=()
for t in systemd-analyze dpkg-deb file od go; do command -v "$t" >/dev/null || missing+=("$t"); done
if [ ${#missing[@]} -gt 0 ]; then
	echo "ops-test: missing ${missing[*]} (Debian packages: systemd, dpkg, file, coreutils)" >&2
	exit 1
fi

# --- 1. packages: the only build; every check below uses their binaries ---
step "packages"
if ! scripts/package.sh amd64 arm64 armhf; then
	fail "scripts/package.sh"
	exit 1
fi
deb() { ls dist/linnet_*_"$1".deb 2>/dev/null | head -1; }

# e_machine of an ELF file read from stdin: 62 x86-64, 183 aarch64, 40 arm.
elf_machine() { od -An -t u2 -j 18 -N 2 | tr -d ' '; }
elf_class() { od -An -t u1 -j 4 -N 1 | tr -d ' '; } # 1 = 32-bit, 2 = 64-bit
for a in amd64:62:2 arm64:183:2 armhf:40:1; do
	IFS=: read -r arch machine class <<<"$a"
	d=$(deb "$arch")
	if [ -z "$d" ]; then
		fail "$arch: no package in dist/"
		continue
	fi
	dpkg-deb --fsys-tarfile "$d" | tar -xO ./usr/bin/linnet >"$tmp/linnet-$arch"
	chmod +x "$tmp/linnet-$arch"
	got_m=$(elf_machine <"$tmp/linnet-$arch")
	got_c=$(elf_class <"$tmp/linnet-$arch")
	field=$(dpkg-deb -f "$d" Architecture)
	if [ "$got_m" = "$machine" ] && [ "$got_c" = "$class" ] && [ "$field" = "$arch" ]; then
		ok "$d: Architecture $field, /usr/bin/linnet is $(file -b "$tmp/linnet-$arch" | cut -d, -f1-2)"
	else
		fail "$d: Architecture $field, ELF machine $got_m class $got_c (want $arch, $machine, $class)"
	fi
	# The copyright file: linnet's LICENSE, and a section for every module
	# the binary's build information lists, at the version linked.
	dpkg-deb --fsys-tarfile "$d" | tar -xO ./usr/share/doc/linnet/copyright >"$tmp/copyright-$arch" 2>/dev/null
	missing_lic=$(go version -m "$tmp/linnet-$arch" | awk '$1 == "dep" { print $2 " " $3 }' | while read -r mod ver; do
		grep -qxF "$mod $ver" "$tmp/copyright-$arch" || printf '%s@%s ' "$mod" "$ver"
	done)
	mods=$(go version -m "$tmp/linnet-$arch" | awk '$1 == "dep"' | wc -l)
	if [ ! -s "$tmp/copyright-$arch" ]; then
		fail "$arch: no /usr/share/doc/linnet/copyright in the package"
	elif ! grep -qF "$(sed -n 2p LICENSE)" "$tmp/copyright-$arch" || [ -n "$missing_lic" ] || [ "$mods" -eq 0 ]; then
		fail "$arch: copyright lacks LICENSE or the licences of: ${missing_lic:-(no modules found)}"
	else
		ok "$arch: copyright carries LICENSE and the licences of all $mods linked modules"
	fi
	size=$(stat -c %s "$tmp/linnet-$arch")
	if [ "$size" -lt $((15 * 1024 * 1024)) ] && file -b "$tmp/linnet-$arch" | grep -q ', stripped'; then
		ok "$arch: stripped binary $size bytes (< 15 MB)"
	else
		fail "$arch: binary $size bytes, $(file -b "$tmp/linnet-$arch" | grep -o 'not stripped\|stripped')"
	fi
done

# --- 2. the systemd unit ----------------------------------------------------
step "systemd unit"
# verify wants ExecStart's binary to exist: check a copy pointing at the
# amd64 package's binary.
sed "s#/usr/bin/linnet#$tmp/linnet-amd64#g" scripts/linnet.service >"$tmp/linnet.service"
if out=$(systemd-analyze verify "$tmp/linnet.service" 2>&1) && [ -z "$out" ]; then
	ok "systemd-analyze verify: clean"
else
	fail "systemd-analyze verify: $out"
fi
exposure=$(systemd-analyze security --offline=true scripts/linnet.service 2>/dev/null |
	sed -n 's/.*Overall exposure level for linnet.service: \([0-9.]*\).*/\1/p')
if [ -n "$exposure" ] && awk -v e="$exposure" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(e <= m) }'; then
	ok "systemd-analyze security --offline=true: exposure $exposure (<= $MAX_EXPOSURE)"
else
	fail "systemd-analyze security: exposure '${exposure:-?}' (want <= $MAX_EXPOSURE)"
fi

# Where the README says each file lands; the install check holds both to it.
paths=(
	/usr/bin/linnet
	/lib/systemd/system/linnet.service
	/etc/linnet/linnet.toml
	/usr/share/doc/linnet/mosquitto.conf
	/usr/share/doc/linnet/README.md
	/usr/share/doc/linnet/copyright
	/var/lib/linnet
)
for p in "${paths[@]}"; do
	grep -qF "$p" README.md || fail "README.md does not mention $p"
done

step "install, run, purge (amd64)"
if [ "$sudo" = none ]; then
	skip "dpkg -i needs root or passwordless sudo"
elif dpkg-query -W -f='${Status}' linnet 2>/dev/null | grep -q 'installed'; then
	skip "a linnet package is already installed here; this check would purge it"
else
	d=$(deb amd64)
	if $sudo dpkg -i "$d" >"$tmp/dpkg.log" 2>&1; then
		installed=yes
		ok "dpkg -i $d"
	else
		fail "dpkg -i $d: $(tail -3 "$tmp/dpkg.log")"
	fi
	if [ -n "$installed" ]; then
		for p in "${paths[@]}"; do
			[ -e "$p" ] && ok "installed $p" || fail "missing $p"
		done
		cmp -s scripts/linnet.service /lib/systemd/system/linnet.service ||
			fail "/lib/systemd/system/linnet.service differs from scripts/linnet.service"
		dpkg-query -W -f='${Conffiles}\n' linnet | grep -q ' /etc/linnet/linnet.toml ' &&
			ok "/etc/linnet/linnet.toml is a conffile" || fail "/etc/linnet/linnet.toml is not a conffile"
		owner=$(stat -c '%U:%G %a' /var/lib/linnet)
		[ "$owner" = "linnet:linnet 750" ] && ok "/var/lib/linnet is $owner" || fail "/var/lib/linnet is $owner"
		shell=$(getent passwd linnet | cut -d: -f7)
		[ "$shell" = /usr/sbin/nologin ] && ok "system user linnet (shell $shell)" || fail "user linnet: '$(getent passwd linnet)'"
		[ -L /etc/systemd/system/multi-user.target.wants/linnet.service ] &&
			ok "linnet.service enabled" || fail "linnet.service not enabled"
		if out=$(systemd-analyze verify /lib/systemd/system/linnet.service 2>&1) && [ -z "$out" ]; then
			ok "systemd-analyze verify on the installed unit: clean"
		else
			fail "systemd-analyze verify /lib/systemd/system/linnet.service: $out"
		fi
		# On a host where systemd runs, postinst started the service: report
		# how that went (informational; it needs a working `linnet run`).
		if [ -d /run/systemd/system ]; then
			sleep 2
			state=$(systemctl is-active linnet.service 2>&1)
			echo "info  systemd is running here: linnet.service is $state"
			[ "$state" = active ] || journalctl -u linnet.service -n 15 --no-pager 2>/dev/null | sed 's/^/info  /'
		fi
		if v=$(/usr/bin/linnet version); then ok "/usr/bin/linnet version: $v"; else fail "/usr/bin/linnet version"; fi
		if /usr/bin/linnet selftest >"$tmp/st" 2>&1; then
			ok "/usr/bin/linnet selftest: $(head -1 "$tmp/st")"
		else
			fail "/usr/bin/linnet selftest: $(cat "$tmp/st")"
		fi
		# remove keeps config, data and user; a reinstall enables it again.
		if $sudo dpkg -r linnet >"$tmp/dpkg.log" 2>&1 && [ ! -e /usr/bin/linnet ] &&
			[ -f /etc/linnet/linnet.toml ] && [ -d /var/lib/linnet ] && getent passwd linnet >/dev/null; then
			ok "dpkg -r keeps /etc/linnet, /var/lib/linnet and the user"
		else
			fail "dpkg -r: $(tail -3 "$tmp/dpkg.log")"
		fi
		$sudo dpkg -i "$d" >"$tmp/dpkg.log" 2>&1 || fail "reinstall: $(tail -3 "$tmp/dpkg.log")"
		[ -L /etc/systemd/system/multi-user.target.wants/linnet.service ] &&
			ok "reinstalled and enabled again" || fail "reinstall did not enable linnet.service"
		if $sudo dpkg --purge linnet >"$tmp/dpkg.log" 2>&1; then
			installed=""
			ok "dpkg --purge linnet"
		else
			fail "dpkg --purge linnet: $(tail -3 "$tmp/dpkg.log")"
		fi
		left=()
		for p in "${paths[@]}" /etc/linnet /etc/systemd/system/multi-user.target.wants/linnet.service \
			/etc/systemd/system/linnet.service; do
			[ -e "$p" ] || [ -L "$p" ] && left+=("$p")
		done
		getent passwd linnet >/dev/null && left+=("user linnet")
		getent group linnet >/dev/null && left+=("group linnet")
		dpkg-query -W linnet >/dev/null 2>&1 && left+=("dpkg database entry")
		[ ${#left[@]} -eq 0 ] && ok "purge left nothing behind" || fail "purge left: ${left[*]}"
	fi
fi

# --- 3. selftest --------------------------------------------------------------
# selftest_case NAME EXPECT(pass|fail) KERNEL_TO_NAME CMD...
selftest_case() {
	local name=$1 expect=$2 kernel=$3
	shift 3
	"$@" >"$tmp/st.out" 2>"$tmp/st.err"
	local rc=$?
	if [ "$expect" = pass ] && [ $rc -eq 0 ]; then
		ok "$name: $(head -1 "$tmp/st.out" | sed 's/, seed [0-9]*//')"
	elif [ "$expect" = fail ] && [ $rc -ne 0 ] && grep -qF "$kernel" "$tmp/st.err"; then
		ok "$name: exit $rc, $(cat "$tmp/st.err")"
	else
		fail "$name: exit $rc (want $expect), stdout: $(cat "$tmp/st.out") stderr: $(cat "$tmp/st.err")"
	fi
}

# pick_kernel prints a kernel that passed in the last selftest_case's
# output: an sdot one when there is one (the fast path a CPU may lack),
# else the first.
pick_kernel() {
	{ grep -m1 '^ok .*/sdot$' "$tmp/st.out" || grep -m1 '^ok ' "$tmp/st.out"; } | awk '{print $2}'
}

step "selftest (native)"
bin=$tmp/linnet-amd64
selftest_case "linnet selftest" pass "" "$bin" selftest
k=$(pick_kernel)
total=$(grep -c '^ok ' "$tmp/st.out")
# The middle kernel: the one child process dies there and a new one
# checks the rest.
mid=$(grep '^ok ' "$tmp/st.out" | awk -v n="$total" 'NR == int((n + 1) / 2) { print $2 }')
if [ -n "$k" ]; then
	selftest_case "$k with a corrupted result" fail "$k" env LINNET_SELFTEST_BREAK="$k" "$bin" selftest
	selftest_case "$mid dying of SIGILL" fail "$mid" env LINNET_SELFTEST_BREAK="$mid:sigill" "$bin" selftest
	passed=$(grep -c '^ok ' "$tmp/st.out")
	[ "$passed" -eq $((total - 1)) ] && ok "the other $passed kernels checked past it" ||
		fail "after $mid died, $passed of $total kernels passed (want $((total - 1)))"
else
	skip "forced failure: this CPU claims no kernel besides generic"
fi

step "selftest (qemu)"
# Without binfmt_misc the kernel cannot start a foreign child by itself:
# LINNET_SELFTEST_WRAP starts each child under the same emulator and CPU.
qemu_selftest() {
	local emu=$1 cpu=$2 arch=$3
	local b=$tmp/linnet-$arch
	if ! command -v "$emu" >/dev/null; then
		skip "$emu not installed (make test-deps installs qemu-user-static)"
		return
	fi
	local run=(env LINNET_SELFTEST_WRAP="$emu -cpu $cpu" "$emu" -cpu "$cpu" "$b")
	selftest_case "$arch on $cpu: linnet selftest" pass "" "${run[@]}" selftest
	# A CPU without the dot-product extension must not claim SDOT kernels.
	if [ "$cpu" = cortex-a72 ] && grep -q '/sdot' "$tmp/st.out"; then
		fail "cortex-a72 (no SDOT) claims an sdot kernel: $(grep /sdot "$tmp/st.out")"
	fi
	local k
	k=$(pick_kernel)
	if [ -n "$k" ]; then
		selftest_case "$arch on $cpu: $k forced to fail" fail "$k" env LINNET_SELFTEST_BREAK="$k" "${run[@]}" selftest
	fi
}
qemu_selftest qemu-aarch64-static cortex-a72 arm64
qemu_selftest qemu-aarch64-static neoverse-n1 arm64
qemu_selftest qemu-arm-static cortex-a7 armhf

# --- 4. the reference mosquitto.conf -----------------------------------------
step "reference mosquitto.conf"
if ! command -v mosquitto >/dev/null && [ ! -x /usr/sbin/mosquitto ]; then
	skip "mosquitto not installed (make test-deps installs it)"
else
	mosq=$(command -v mosquitto || echo /usr/sbin/mosquitto)
	port=$((20000 + RANDOM % 40000))
	mkdir -p "$tmp/mosq/conf.d"
	# Debian's main file, with its paths moved here, includes the drop-in.
	# mosquitto started as root drops to the user named here.
	cat >"$tmp/mosq/mosquitto.conf" <<-EOF
		user $(id -un)
		pid_file $tmp/mosq/mosquitto.pid
		persistence true
		persistence_location $tmp/mosq/
		log_dest file $tmp/mosq/mosquitto.log
		include_dir $tmp/mosq/conf.d
	EOF
	sed "s/^listener 1883 127.0.0.1/listener $port 127.0.0.1/" scripts/mosquitto.conf >"$tmp/mosq/conf.d/linnet.conf"
	"$mosq" -c "$tmp/mosq/mosquitto.conf" >/dev/null 2>&1 &
	broker_pid=$!
	got=""
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		# mosquitto_sub waits for one message; -W bounds it if none comes.
		mosquitto_sub -h 127.0.0.1 -p "$port" -q 1 -t linnet/ops-test -C 1 -W 5 >"$tmp/mosq/got" 2>/dev/null &
		sub=$!
		sleep 0.3
		mosquitto_pub -h 127.0.0.1 -p "$port" -q 1 -t linnet/ops-test -m hello 2>/dev/null
		wait $sub && got=$(cat "$tmp/mosq/got")
		[ "$got" = hello ] && break
	done
	if [ "$got" = hello ]; then
		ok "mosquitto loads scripts/mosquitto.conf as a conf.d drop-in and carries QoS 1"
	else
		fail "mosquitto with scripts/mosquitto.conf: $(tail -5 "$tmp/mosq/mosquitto.log" 2>/dev/null)"
	fi
	kill "$broker_pid" 2>/dev/null
	wait "$broker_pid" 2>/dev/null
	broker_pid=""
fi

echo
if [ $failures -gt 0 ]; then
	echo "ops-test: $failures failed"
	exit 1
fi
echo "ops-test: all passed"
