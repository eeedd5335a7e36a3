# pyre: the two commands a newcomer needs are `make run` and `make test`.
GO       ?= go
NPM      ?= npm
BIN      := bin
ADDR     ?= 127.0.0.1:7175

.PHONY: run test vet fmt-check go-test conformance conformance-deps server fuzz bench clean

## run: start the Landale reference server (in-memory PubSub, no Redis needed)
run:
	$(GO) run ./examples/landale -addr $(ADDR)

## test: everything CI runs: vet, gofmt, go test -race, the phoenix.js suite
test: vet fmt-check go-test conformance

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

go-test:
	$(GO) test -race -count=1 ./...

server:
	$(GO) build -o $(BIN)/conformance-server ./conformance/server

conformance-deps:
	@command -v node >/dev/null || { echo "node is required for the conformance suite (Node 20+)"; exit 1; }
	cd conformance && $(NPM) ci --no-audit --no-fund --loglevel=error

## conformance: the official phoenix.js clients (1.8.0, 1.8.12, 1.8.16) against the test server
conformance: server conformance-deps
	cd conformance && PYRE_SERVER_BIN=$(CURDIR)/$(BIN)/conformance-server $(NPM) test

## fuzz: run each frame-decoder fuzz target for FUZZTIME (default 60s)
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV1$$' -fuzztime $(FUZZTIME)
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV2Text$$' -fuzztime $(FUZZTIME)
	$(GO) test ./channel -run '^$$' -fuzz '^FuzzDecodeV2Binary$$' -fuzztime $(FUZZTIME)

## bench: Go benchmarks of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./channel ./pubsub ./batcher ./fallback

clean:
	rm -rf $(BIN)
