# Tandem: the two commands are `make run` and `make test`.
CARGO ?= cargo
CONFIG ?= configs/node.toml
# Debian packages the test suite needs: X servers (Xvfb; Xorg with the dummy
# driver, whose screen RandR can resize) and X clients for the X11 tests
# (x11-utils brings xev), the libraries the viewer window loads at run time
# (winit on X11), prometheus and promtool for the metrics and dashboard
# tests, systemd-analyze for the unit file, python3-venv for the API
# contract test's virtualenv, chromium (and its driver) for the browser
# attendee tests (tests/tests/browser.rs), gzip for the bundle-size check.
TEST_PACKAGES := xvfb xterm x11-apps xdotool x11-utils x11-xserver-utils xserver-xorg-core xserver-xorg-video-dummy libx11-6 libx11-xcb1 libxcursor1 libxrandr2 libxi6 libxkbcommon-x11-0 prometheus xclip systemd python3-venv chromium chromium-driver gzip iproute2
APT_MARK := target/.test-packages-installed
# What `make bytes` needs: Xvfb and X clients, the two VNC servers it
# measures Tandem against (x11vnc; X0tigervnc is in
# tigervnc-scraping-server), the terminal font and `ip` for the namespace.
BYTES_PACKAGES := xvfb xterm xdotool x11-utils x11vnc tigervnc-scraping-server fonts-dejavu-core iproute2
BYTES_MARK := target/.bytes-packages-installed
# Extra arguments for the bytes tool, e.g. BYTES_ARGS="--phase-seconds 5 --json".
BYTES_ARGS ?=

# schemathesis and openapi-spec-validator for tests/tests/api_contract.rs,
# every package pinned in the requirements file, in a virtualenv of our own.
VENV := target/venv
API_REQUIREMENTS := tests/api/requirements.txt
VENV_MARK := $(VENV)/.installed

# The attendee page's npm toolchain (esbuild, typescript, zstddec,
# playwright-core), pinned by web/package-lock.json.
WEB_MARK := web/node_modules/.package-lock.json

.PHONY: run test api-contract build lint deps bench bytes x11-figures cluster cluster-load fanout web clean fuzz

# What `make run` shares: the X display in $DISPLAY when there is one.
SOURCE ?= $(if $(DISPLAY),x11,synthetic)

## Build and start a node sharing this desktop (synthetic when there is no X display).
run:
	$(CARGO) build --locked --release -p tandem-cli
	./target/release/tandem node --config $(CONFIG) --source $(SOURCE)

## Cluster fan-out figures: one node vs an origin with two relays (prints them).
cluster-load:
	$(CARGO) build --locked --release -p tandem-cli -p tandem-benches --bin tandem --bin cluster-load
	./target/release/cluster-load

## Fan-out figures: one node, N real attendees held by one process (node and
## tool pinned to different cores); FANOUT_ARGS e.g. "--workload office --counts 100,450".
FANOUT_ARGS ?=
fanout:
	$(CARGO) build --locked --release -p tandem-cli -p tandem-benches --bin tandem --bin fanout
	./target/release/fanout $(FANOUT_ARGS)

## Start a three-node cluster on loopback (configs/cluster/) and print how
## to join through each node; Ctrl-C stops all three.
cluster:
	$(CARGO) build --locked --release -p tandem-cli
	@mkdir -p target/cluster
	@# The shared secret: random, in a file only this user reads (never on a command line).
	@test -s target/cluster/secret || (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > target/cluster/secret)
	@./target/release/tandem node --config configs/cluster/node1.toml > target/cluster/node1.out 2> target/cluster/node1.log & \
	pids="$$!"; \
	for n in 2 3; do ./target/release/tandem node --config configs/cluster/node$$n.toml > target/cluster/node$$n.out 2> target/cluster/node$$n.log & pids="$$pids $$!"; done; \
	trap 'kill $$pids 2>/dev/null; wait' INT TERM EXIT; \
	for i in $$(seq 1 100); do grep -q '^connection string:' target/cluster/node1.out && break; sleep 0.1; done; \
	ticket=$$(sed -n 's/^connection string: //p' target/cluster/node1.out); \
	sleep 3; \
	echo "three nodes: node1 (origin) quic 127.0.0.1:4433 admin http://127.0.0.1:7070, node2 4434/7071, node3 4435/7072"; \
	echo "logs in target/cluster/; members: curl -s -H 'Authorization: Bearer local-cluster-admin-token' http://127.0.0.1:7070/api/v1/cluster/nodes"; \
	echo "password: cluster-pw"; \
	for n in 1 2 3; do \
	  port=$$((4432+n)); rest=$$(echo "$$ticket" | sed 's|^tandem://[^/]*||'); \
	  echo "join through node$$n:"; \
	  echo "  ./target/release/tandem view 'tandem://127.0.0.1:$$port$$rest' --password cluster-pw"; \
	done; \
	echo "a fresh invitation lists every live member: ./target/release/tandem invite --admin http://127.0.0.1:7070 --token local-cluster-admin-token --password cluster-pw"; \
	wait

## Install what the tests need, then run every test, rustfmt and clippy.
# The binaries are built in the same invocation as the tests (`--bins
# --tests`), so with the same feature resolution as `cargo test --workspace`
# (dev-dependencies unify features): every crate is compiled once, and the
# test run finds everything built.
test: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) build --locked --workspace --bins --tests
	$(CARGO) test --locked --workspace
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

## The admin API's contract alone: openapi-spec-validator and schemathesis
## against a real node (also part of `make test`).
api-contract: deps
	$(CARGO) build --locked --workspace
	$(CARGO) test --locked --workspace --test api_contract

build:
	$(CARGO) build --locked --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

# Seconds each fuzz target runs for in `make fuzz`.
FUZZ_SECONDS ?= 300
FUZZ_TARGETS := control_frames graphics cursor channel_stream connection_string relay_link gossip member_info config

## Run every fuzz target for FUZZ_SECONDS (default 300) each, two at a time,
## on the stable toolchain (cargo-fuzz with --sanitizer none: no ASan on
## stable). New inputs go to fuzz/target/corpus/<target> (the committed
## corpus in fuzz/corpus/ is read, not grown); crashes to fuzz/artifacts/;
## the executions per target are printed at the end.
fuzz:
	command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	cd fuzz && cargo fuzz build --sanitizer none
	@mkdir -p fuzz/target/logs
	@printf '%s\n' $(FUZZ_TARGETS) | xargs -P 2 -I{} sh -c 'mkdir -p fuzz/target/corpus/{} && cd fuzz && nice -n 10 cargo fuzz run --sanitizer none {} target/corpus/{} corpus/{} -- -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 > target/logs/{}.log 2>&1; echo "{}: exit $$?: $$(grep -E "^Done [0-9]+ runs" target/logs/{}.log || tail -n 3 target/logs/{}.log)"'
	@! ls fuzz/artifacts/*/crash-* 2>/dev/null

## Codec figures (criterion).
bench:
	$(CARGO) bench --locked -p tandem-benches

## X11 capture and bandwidth figures on Xvfb (prints them).
x11-figures: deps
	$(CARGO) build --locked --release -p tandem-cli -p tandem-benches --bin tandem --bin x11-figures
	./target/release/x11-figures

## Bytes on the wire per phase (idle, typing, scroll, move) for one attendee:
## tandem, x11vnc and X0tigervnc side by side, counted on a private network
## namespace's lo (run as root; 20-s phases, BYTES_ARGS="--phase-seconds 5" for a quick run).
bytes: $(BYTES_MARK)
	$(CARGO) build --locked --release -p tandem-cli -p tandem-benches --bin tandem --bin bytes
	./target/release/bytes $(BYTES_ARGS)

$(BYTES_MARK): Makefile
	$(call install_missing,$(BYTES_PACKAGES))
	@mkdir -p target && touch $(BYTES_MARK)

deps: $(APT_MARK) $(VENV_MARK) $(WEB_MARK)

$(WEB_MARK): web/package-lock.json
	cd web && npm ci --no-audit --no-fund

## Rebuild the attendee page into web/dist/ (embedded in the binary; commit it).
web: $(WEB_MARK)
	cd web && npm run build

$(VENV_MARK): $(API_REQUIREMENTS) | $(APT_MARK)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r $(API_REQUIREMENTS)
	@touch $@

$(APT_MARK): Makefile
	$(call install_missing,$(TEST_PACKAGES))
	@mkdir -p target && touch $(APT_MARK)

# Installs those of the Debian packages $(1) that are missing (apt-get,
# through sudo unless root).
define install_missing
	@missing=""; for p in $(1); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing; \
	fi
endef

clean:
	$(CARGO) clean
