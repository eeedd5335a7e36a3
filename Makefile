# pyre: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
NPM      ?= npm
BIN      := bin
ADDR     ?= 127.0.0.1:7175

.PHONY: run test soak vet cross fmt-check go-test conformance conformance-deps server landale landale-e2e landale-deps landale-apps browser browser-deps fuzz bench bench-load bench-tools bench-compare bench-anchors-test clean

## run: start the Landale reference server (in-memory PubSub, no Redis needed)
run:
	$(GO) run ./examples/landale -addr $(ADDR)

## test: everything CI runs: vet, gofmt, go test -race, the phoenix.js suites, the browser test
test: vet fmt-check cross go-test soak conformance landale-e2e browser

vet:
	$(GO) vet ./...

## cross: the module builds for Windows and macOS too (raw socket writes are Linux-only)
cross:
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

go-test:
	$(GO) test -race -count=1 ./...

## soak: 20 000 WebSocket and 20 000 LongPoll connect/join/close cycles, leaks checked (go-test runs 2 000 under -race)
soak:
	$(GO) test -count=1 -run '^TestSoak' -v ./channel

server:
	$(GO) build -o $(BIN)/conformance-server ./conformance/server

conformance-deps:
	@command -v node >/dev/null || { echo "node is required for the conformance suite (Node 20+)"; exit 1; }
	cd conformance && $(NPM) ci --no-audit --no-fund --loglevel=error

## conformance: the official phoenix.js clients (1.8.0, 1.8.12, 1.8.16) against the test server
conformance: server conformance-deps
	cd conformance && PYRE_SERVER_BIN=$(CURDIR)/$(BIN)/conformance-server $(NPM) test

LANDALE_E2E := examples/landale/e2e

landale:
	$(GO) build -o $(BIN)/landale ./examples/landale

landale-deps:
	@command -v node >/dev/null || { echo "node is required for the Landale suites (Node 20+)"; exit 1; }
	cd $(LANDALE_E2E) && $(NPM) ci --no-audit --no-fund --loglevel=error

## landale-e2e: the Landale acceptance items (A1-A81) with phoenix.js 1.8.0 and 1.8.16
landale-e2e: landale landale-deps
	cd $(LANDALE_E2E) && LANDALE_BIN=$(CURDIR)/$(BIN)/landale $(NPM) test

## browser-deps: Debian's Chromium for the browser test (installed when missing and we are root)
browser-deps:
	@if [ -x /usr/bin/chromium ] || command -v chromium >/dev/null 2>&1; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "chromium is missing and cannot be installed here (need root and apt-get)"; \
		if [ "$$CI" = true ]; then exit 1; fi; \
	fi

## browser: both Landale pages in headless Chromium (playwright-core)
browser: landale landale-deps browser-deps
	cd $(LANDALE_E2E) && LANDALE_BIN=$(CURDIR)/$(BIN)/landale $(NPM) run test:browser

## landale-apps: Landale's own apps (built on demand from its repository, not vendored: it has no licence) in Chromium; not in `make test`
landale-apps: landale landale-deps browser-deps
	cd $(LANDALE_E2E) && LANDALE_BIN=$(CURDIR)/$(BIN)/landale $(NPM) run test:landale-apps

## fuzz: run each frame-decoder (and close-frame scanner) fuzz target for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV1$$' -fuzztime $(FUZZTIME)
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV2Text$$' -fuzztime $(FUZZTIME)
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV2Binary$$' -fuzztime $(FUZZTIME)
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzFrameScanner$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./channel ./pubsub ./batcher ./fallback ./pubsub/redis ./pubsub/nats ./internal/uring

## bench-load: the load-tool rows of BENCHMARKS.md (minutes; run on an otherwise idle machine)
bench-load:
	$(GO) build -o $(BIN)/pyrebench ./cmd/pyrebench
	$(BIN)/pyrebench idle -n 19000 -reps 3 -wait-idle 80
	$(BIN)/pyrebench idle -n 5000 -reps 3 -wait-idle 80 -client-deflate -compression
	$(BIN)/pyrebench idle -n 5000 -reps 3 -wait-idle 80 -client-deflate
	$(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 24 -reps 5 -wait-idle 80
	$(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 25 -reps 5 -wait-idle 80
	$(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 24 -reps 5 -wait-idle 80 -write-delay 50ms
	$(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 12 -reps 3 -wait-idle 80
	$(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 5 -reps 1 -wait-idle 80
	for pair in 1 2 3; do for p in 0 50; do \
	  $(BIN)/pyrebench fanout -pin -n 10000 -size 128 -rate 24 -reps 1 -wait-idle 80 -filter-pct $$p || exit 1; \
	done; done
	$(BIN)/pyrebench rpc -pin -n 1000 -seconds 10 -reps 3 -wait-idle 80
	$(BIN)/pyrebench slow -n 1000 -stalled-pct 1 -rate 50 -size 8192 -seconds 20 -reps 3 -wait-idle 80

## bench-tools: bin/pyrebench and bin/centrifuge-anchor (the anchor is its own module, bench/anchors)
bench-tools:
	$(GO) build -o $(BIN)/pyrebench ./cmd/pyrebench
	cd bench/anchors && $(GO) build -o $(CURDIR)/$(BIN)/centrifuge-anchor ./centrifuge

## bench-compare: pyre and centrifuge interleaved, 3 pairs (~20 min, at most ~30; quiet machine, Redis 6379, NATS 4222); writes bench/results/<time>/report.md
bench-compare:
	bench/compare.sh

## bench-anchors-test: vet and test the anchor module (downloads centrifuge on first use; not part of make test)
bench-anchors-test:
	cd bench/anchors && $(GO) vet ./... && $(GO) test -race -count=1 ./...

clean:
	rm -rf $(BIN)
