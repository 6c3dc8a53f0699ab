# hyper2kvm — the two commands of the README:
#   make demo   set up, build, and run the main job end to end on the built-in sample
#   make test   set up, build, and run every test (Rust, C ABI, Python, header, lints, packaging)
# Other targets: setup, build, lint, test-fuzz, bench (conversion vs qemu-img, whole job vs virt-v2v).

SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
LIBDIR := target/lib
export PATH := $(HOME)/.cargo/bin:$(PATH)
# Each step of `make test` is timed into target/steps.txt (printed at the end, or on failure).
STEP := scripts/timed.sh

.PHONY: steps-reset setup build demo test test-rust test-c test-py test-packaging test-container test-fuzz check-header lint bench clean-cache

setup:
	@$(STEP) setup scripts/setup.sh

build: setup
	$(STEP) build $(CARGO) build --release
	@mkdir -p $(LIBDIR)
	@cp target/release/libhyper2kvm.so $(LIBDIR)/libhyper2kvm.so.1
	@ln -sf libhyper2kvm.so.1 $(LIBDIR)/libhyper2kvm.so
	@sed -e "s|@PREFIX@|$(CURDIR)|; s|@LIBDIR@|$(CURDIR)/$(LIBDIR)|; s|@INCLUDEDIR@|$(CURDIR)/include|; s|@VERSION@|$$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)|" \
		hyper2kvm-ffi/hyper2kvm.pc.in > $(LIBDIR)/hyper2kvm.pc

demo: build
	scripts/demo.sh

test: steps-reset build lint check-header test-rust test-c test-py test-packaging test-container test-fuzz
	@echo "make test: all suites passed; time per step:" && cat target/steps.txt

steps-reset:
	@mkdir -p target && : > target/steps.txt

test-rust: build
	$(STEP) test-rust $(CARGO) nextest run --release --no-fail-fast

test-c: build
	$(STEP) test-c scripts/test-c.sh

test-py: build
	$(STEP) maturin $(VENV)/bin/maturin develop --quiet --release -m hyper2kvm-py/Cargo.toml
	$(VENV)/bin/python -m mypy.stubtest hyper2kvm._hyper2kvm
	$(VENV)/bin/python -m mypy --strict hyper2kvm-py/python/hyper2kvm
	$(STEP) pytest $(VENV)/bin/python -m pytest -q hyper2kvm-py/tests --doctest-modules hyper2kvm-py/python/hyper2kvm

test-packaging: build
	$(STEP) test-packaging scripts/test-packaging.sh

# The container image built with podman and converting the built-in sample (docs/kubernetes.md).
test-container: build
	$(STEP) test-container scripts/test-container.sh

# Every cargo-fuzz target for FUZZ_SECONDS each on the committed corpus, after replaying the
# kept crashes (docs/fuzzing.md).
FUZZ_SECONDS ?= 20
test-fuzz: setup
	$(STEP) test-fuzz scripts/fuzz.sh $(FUZZ_SECONDS)

check-header: build
	@cbindgen --quiet --config hyper2kvm-ffi/cbindgen.toml --crate hyper2kvm-ffi --output target/hyper2kvm.h.check hyper2kvm-ffi
	@diff -u include/hyper2kvm.h target/hyper2kvm.h.check || { echo "include/hyper2kvm.h is stale: regenerate it with cbindgen"; exit 1; }
	@echo "check-header: include/hyper2kvm.h matches cbindgen"

lint: setup
	$(CARGO) fmt --all -- --check
	$(STEP) clippy $(CARGO) clippy --workspace --all-targets --release -- -D warnings
	python3 scripts/check-layers.py

bench: build
	bench/convert.sh
	bench/manifest.sh
	bench/v2v.sh
	bench/trim.sh
	$(CARGO) bench -p hyper2kvm-daemon --bench daemon_queue
