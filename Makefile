# linnet: `make run` starts the daemon on its embedded defaults,
# `make test` installs what the tests need and runs them all.

GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
BIN     := bin
export CGO_ENABLED := 0

# Fuzz targets run for a bounded time in `make test`.
FUZZTIME ?= 10s
FUZZ := ./simd/:FuzzDotQ8 ./simd/:FuzzDotQ4 ./simd/:FuzzQuantizeQ8 \
        ./model/:FuzzDecode ./model/:FuzzCSV ./model/:FuzzTable ./model/:FuzzEncode ./model/:FuzzLearnerState \
        ./model/:FuzzOpenRollback ./model/onnx/:FuzzImport \
        ./daemon/wire/:FuzzDecode ./daemon/wire/:FuzzFastReading ./daemon/wire/:FuzzPublished ./daemon/wire/:FuzzScanID

# Packages whose tests also run under qemu (arm64 on two CPUs, armv7).
QEMU_PKGS := ./simd/ ./model/ ./store/

.PHONY: all build run test test-deps vet unit fuzz qemu ops-test bench cross package clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linnet ./cmd/linnet

# The daemon on its embedded defaults: broker on 127.0.0.1:1883, the demo
# model, data in ./linnet-data, metrics on 127.0.0.1:9464. Try it from a
# second terminal with the commands in the README.
run: build
	$(BIN)/linnet run

test: test-deps vet unit fuzz qemu ops-test

test-deps:
	@scripts/install-test-deps.sh

# Packages with architecture- or noasm-specific files: vetted (asmdecl
# checks every assembly frame) and tested once more for those builds. The
# rest is the same code on every target; package.sh and qemu-test.sh still
# compile it for arm64 and armv7.
ARCH_PKGS := ./simd/

vet:
	$(GO) mod tidy -diff
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet $(ARCH_PKGS)
	GOARCH=arm GOARM=7 $(GO) vet $(ARCH_PKGS)
	$(GO) vet -tags noasm $(ARCH_PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo 'gofmt needed'; exit 1; }

unit:
	$(GO) test ./...
	$(GO) test -tags noasm $(ARCH_PKGS)

fuzz:
	@set -e; for t in $(FUZZ); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$pkg $$name for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

qemu:
	scripts/qemu-test.sh $(QEMU_PKGS)

# The systemd unit, the .deb packages (installed and purged here), selftest.
ops-test:
	scripts/ops-test.sh

bench: build
	$(BIN)/linnet bench
	$(GO) test -run '^$$' -bench . -benchmem ./...

# Stripped binaries for every target, with their sizes.
cross:
	@mkdir -p $(BIN)
	GOOS=linux GOARCH=amd64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linnet-linux-amd64 ./cmd/linnet
	GOOS=linux GOARCH=arm64 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linnet-linux-arm64 ./cmd/linnet
	GOOS=linux GOARCH=arm GOARM=7 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/linnet-linux-armv7 ./cmd/linnet
	@ls -l $(BIN)/linnet-linux-* | awk '{printf "%-28s %9d bytes  %5.2f MiB\n", $$NF, $$5, $$5/1048576; \
		if ($$5 >= 15*1048576) { print "over the 15 MiB budget"; bad = 1 } } END { exit bad }'

# Debian packages for amd64, arm64 and armhf in dist/ (nfpm: `go tool nfpm`,
# pinned by the tool line in go.mod).
package:
	scripts/package.sh

clean:
	rm -rf $(BIN) dist
