# flowtape — see README.md. Every target installs what it needs itself.

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS  := -X github.com/flowtape/flowtape/internal/buildinfo.Version=$(VERSION) \
            -X github.com/flowtape/flowtape/internal/buildinfo.Commit=$(COMMIT)
BENCHTIME ?= 1x
BENCH_OUT ?= out/bench.txt

.PHONY: all build recorder test bench soak fuzz lint docs demo tools browser chdb clean

all: lint build test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/flowtape ./cmd/flowtape

# The recorder build: record, recover, reindex, export, schema and version,
# without DuckDB and the analyses, static (see cmd/flowtape/commands_recorder.go):
# what an always-on recorder on every node runs.
recorder:
	CGO_ENABLED=0 $(GO) build -trimpath -tags recorder -ldflags "$(LDFLAGS)" -o bin/flowtape-recorder ./cmd/flowtape

# The real programs tests run: versitygw (an S3 server, tools/s3), the hubble
# CLI and hubble-relay (tools/hubble). Tests build
# them on demand too; the first build takes a few minutes).
tools:
	cd tools/s3 && GOWORK=off $(GO) build -o ../../bin/versitygw github.com/versity/versitygw/cmd/versitygw
	cd tools/hubble && GOWORK=off $(GO) build -o ../../bin/hubble github.com/cilium/cilium/hubble
	cd tools/hubble && GOWORK=off $(GO) build -o ../../bin/hubble-relay github.com/cilium/cilium/hubble-relay

# Debian's Chromium, for the tests that open HTML reports in a real browser.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
		{ echo "installing chromium (apt-get)"; sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq chromium >/dev/null; }

# chDB, ClickHouse as a library (libchdb.so from npm @chdb/lib-linux-x64-gnu,
# ClickHouse 26.7), for --engine chdb and the tests that hold the ClickHouse
# SQL to DuckDB's results; npm caches it under ~/.cache/flowtape-chdb.
CHDB_VERSION ?= 26.7.3-stable.1
CHDB_DIR     ?= $(HOME)/.cache/flowtape-chdb
chdb:
	@[ -f $(CHDB_DIR)/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so ] && \
		grep -q '"version": "$(CHDB_VERSION)"' $(CHDB_DIR)/node_modules/@chdb/lib-linux-x64-gnu/package.json || \
		{ command -v npm >/dev/null 2>&1 || { echo "installing npm (apt-get)"; sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		    $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq npm >/dev/null; }; \
		  mkdir -p $(CHDB_DIR) && npm install --prefix $(CHDB_DIR) --no-audit --no-fund --silent @chdb/lib-linux-x64-gnu@$(CHDB_VERSION); }

# Files tests leave to look at (report screenshots) go under out/test.
test: tools browser chdb
	@mkdir -p out/test
	CHDB_LIB_PATH=$(CHDB_DIR)/node_modules/@chdb/lib-linux-x64-gnu/libchdb.so FLOWTAPE_REQUIRE_CHDB=1 \
	$(GO) test -count=1 -timeout 20m -artifacts -outputdir $(CURDIR)/out/test ./...
	# The writer's goroutines (import derives beside its writer), with the
	# race detector: a race shows only there.
	$(GO) test -race -count=1 -timeout 10m -run TestStagedDerivesInWriterOrder ./tape

# Benchmarks with a summary of the numbers the issues ask for. Numbers are
# only comparable within one run: the machines are shared.
bench:
	@mkdir -p $(dir $(BENCH_OUT))
	$(GO) test -run '^$$' -bench . -benchtime $(BENCHTIME) -timeout 60m ./... | tee $(BENCH_OUT)
	@$(GO) run ./internal/benchsummary < $(BENCH_OUT)

# Long fault runs: many SIGKILLs of a real recorder, and a flight recorder
# run for FLOWTAPE_SOAK (30m) with retention and a small disk bound while the
# simulator restarts and the recorder is SIGKILLed now and then.
soak: tools
	FLOWTAPE_KILL_ITERATIONS=$${FLOWTAPE_KILL_ITERATIONS:-60} $(GO) test -count=1 -timeout 60m -run 'SIGKILL' -v ./record ./tape
	FLOWTAPE_SOAK=$${FLOWTAPE_SOAK:-30m} $(GO) test -count=1 -timeout 90m -run 'TestSoakFlightRecorder' -v ./record

# Fuzz the import line decoders (the seed corpora run in make test).
# Minimizing is capped: with Cilium's packages instrumented, each run is slow.
FUZZTIME ?= 5m
fuzz:
	$(GO) test ./importer -run '^$$' -fuzz '^FuzzDecodeLine$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s
	$(GO) test ./importer -run '^$$' -fuzz '^FuzzFastDecode$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 10s

lint:
	@out="$$(gofmt -l $$(git ls-files '*.go'))"; if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags recorder ./cmd/flowtape

# Regenerate docs/schema.md from the schema table.
docs:
	$(GO) test ./cmd/flowtape -run TestSchemaDocIsCurrent -update

# Record the simulator's incident through the real Observer API and print
# what the analyses make of it (well under a minute).
demo: build
	./bin/flowtape demo

clean:
	rm -rf bin out
