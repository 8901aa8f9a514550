# asynclsp: build, test, benchmark, fuzz and demo.
#
# The two commands a newcomer needs are `make demo` and `make test`; everything
# else here serves them or the people working on asynclsp.

GO ?= go
export GOTOOLCHAIN ?= local
export GOFLAGS ?= -buildvcs=false

# The regtest binaries (lnd, lncli, btcd, btcctl) are built from the versions
# pinned as tools in go.mod, into a folder named after those versions, so a
# rebuild happens only when a pin changes.
LND_VERSION  := $(shell $(GO) list -m -f '{{.Version}}' github.com/lightningnetwork/lnd 2>/dev/null)
BTCD_VERSION := $(shell $(GO) list -m -f '{{.Version}}' github.com/btcsuite/btcd 2>/dev/null)
# LND_FIX=1 builds lnd with the fixes of scenarios/lndfix applied to a copy
# of the pinned module (the module cache is untouched), into a folder of its own.
LND_FIX ?=
REGTEST_BIN  := $(CURDIR)/.bin/regtest/lnd-$(LND_VERSION)$(if $(LND_FIX),+fix)_btcd-$(BTCD_VERSION)
LND_TAGS     := dev signrpc walletrpc chainrpc invoicesrpc routerrpc peersrpc
export ASYNCLSP_REGTEST_BIN := $(REGTEST_BIN)

BIN := $(CURDIR)/bin
PKGS := ./...
BENCH_COUNT ?= 6
# FUZZTIME is how long make fuzz runs each fuzz target (CI: 10s).
FUZZTIME ?= 60s
# FUZZMINIMIZETIME bounds the minimization of each new input: Go's default
# of 60 s would take a short run's whole time. A crasher is saved all the
# same, minimized this much.
FUZZMINIMIZETIME ?= 100x
# FUZZFLAGS go to each go test -fuzz, e.g. make fuzz FUZZFLAGS="-parallel 1".
FUZZFLAGS ?=
# FUZZDIRS limits make fuzz to some packages, e.g. FUZZDIRS=./onionmsg;
# default: every package with a fuzz target.
FUZZDIRS ?=
# DEMO_FLAGS go to the demo, e.g. make demo DEMO_FLAGS="-measure-only -pairs 40".
DEMO_FLAGS ?=
# N is how many payments make scale holds at once; SCALE_FLAGS go to it,
# e.g. make scale N=1000 SCALE_FLAGS="-direct 500 -keep".
N ?= 10000
SCALE_FLAGS ?=
# SEED, FAULTS and PAYMENTS are make soak's schedule: the same three replay the
# same faults at the same offsets and the same payments (SEED empty: from the
# clock, printed first); SOAK_FLAGS go to it, e.g. SOAK_FLAGS="-every 4s -keep".
SEED ?=
FAULTS ?= 30
PAYMENTS ?= 60
SOAK_FLAGS ?=

.PHONY: all build regtest-bin chromium test test-short bench fuzz demo scale \
	regtest-up regtest-down lint fmt tidy clean

all: build

## build: compile asynclspd and asyncctl into ./bin
build:
	$(GO) build -o $(BIN)/ ./cmd/...

## regtest-bin: build lnd, lncli, btcd and btcctl from the pinned modules (once)
regtest-bin: $(REGTEST_BIN)/.built

$(REGTEST_BIN)/.built:
	@mkdir -p $(REGTEST_BIN)
	@echo "building lnd $(LND_VERSION) and btcd $(BTCD_VERSION) into $(REGTEST_BIN) (cold: about 6 minutes)"
	$(if $(LND_FIX),GO=$(GO) bash scripts/lnd-fixed-src.sh $(REGTEST_BIN))
	$(GO) build -o $(REGTEST_BIN)/lnd -tags "$(LND_TAGS)" \
		$(if $(LND_FIX),-modfile $(REGTEST_BIN)/go.fix.mod) github.com/lightningnetwork/lnd/cmd/lnd
	$(GO) build -o $(REGTEST_BIN)/lncli -tags "$(LND_TAGS)" github.com/lightningnetwork/lnd/cmd/lncli
	$(GO) build -o $(REGTEST_BIN)/btcd github.com/btcsuite/btcd
	$(GO) build -o $(REGTEST_BIN)/btcctl github.com/btcsuite/btcd/cmd/btcctl
	@touch $@

## chromium: install Debian's chromium for the console's browser test (once; apt-get)
chromium:
	@bash scripts/install-chromium.sh

## test: every test, the regtest scenarios included, with the race detector
test: regtest-bin chromium
	ASYNCLSP_REGTEST=1 $(GO) test -race -timeout 60m -count=1 $(PKGS)

## test-short: every test that needs no regtest network, with the race detector
test-short: chromium
	$(GO) test -race -short -count=1 $(PKGS)

## bench: every benchmark, several runs, summarised by benchstat (medians)
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) $(PKGS) | tee bench.out
	$(GO) tool benchstat bench.out

## fuzz: run each fuzz target for FUZZTIME (default 60s; CI: 10s); fails on a crasher
# Every package with a Fuzz function in its tests, every target in it, one at
# a time. A failure names the target and the input it wrote under
# testdata/fuzz/<target>/: commit that file with the fix, and go test runs it
# as a regression test. Go 1.26's fuzz coordinator can fail a run at its
# deadline with "context deadline exceeded" though no input failed
# (golang/go#75804, fixed in Go 1.27): such a run, and only such, is run
# once more.
fuzz:
	@log=$$(mktemp); trap 'rm -f "$$log" "$$log.rc"' EXIT; n=0; \
	dirs="$(FUZZDIRS)"; [ -n "$$dirs" ] || \
		dirs=$$(grep -rl --include='*_test.go' '^func Fuzz' . | grep -v /testdata/ | xargs -n1 dirname | sort -u); \
	for dir in $$dirs; do \
		targets=$$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$dir/*_test.go); \
		[ -n "$$targets" ] || { echo "make fuzz: no fuzz target in $$dir" >&2; exit 1; }; \
		for target in $$targets; do \
			n=$$((n + 1)); \
			for try in 1 2; do \
				echo "== fuzz $$dir $$target for $(FUZZTIME)"; \
				{ $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) \
					-fuzzminimizetime $(FUZZMINIMIZETIME) $(FUZZFLAGS) $$dir; echo $$? > "$$log.rc"; } 2>&1 | tee "$$log"; \
				[ "$$(cat "$$log.rc")" = 0 ] && break; \
				if ! grep -q 'Failing input written to' "$$log" && grep -q 'context deadline exceeded' "$$log" && [ $$try = 1 ]; then \
					echo "make fuzz: $$target stopped at its deadline with no failing input (golang/go#75804); once more"; \
					continue; \
				fi; \
				echo ""; \
				echo "make fuzz: FAILED: $$target in $$dir" >&2; \
				sed -n 's|.*Failing input written to \(.*\)$$|make fuzz: the failing input is '"$$dir"'/\1: commit it with the fix (go test runs it from then on)|p' "$$log" >&2; \
				exit 1; \
			done; \
		done; \
	done; \
	echo "make fuzz: $$n targets, $(FUZZTIME) each: no failing input"

## demo: an async payment end to end on a real regtest network
demo: regtest-bin
	$(GO) run ./scenarios/cmd/demo $(DEMO_FLAGS)

## scale: hold N payments at once at bob on a real regtest network, and print
## what it costs (creates/s, memory, restart, release throughput, ledger)
scale: regtest-bin
	$(GO) run ./scenarios/cmd/scale -n $(N) $(SCALE_FLAGS)

## soak: a stream of async payments on a real regtest network while a seeded
## fault injector strikes, then a ledger check of every lnd (make soak SEED=...)
.PHONY: soak
soak: regtest-bin
	$(GO) run ./scenarios/cmd/soak $(if $(SEED),-seed $(SEED)) -faults $(FAULTS) \
		-payments $(PAYMENTS) $(SOAK_FLAGS)

## regtest-up: start a regtest network to explore by hand (prints lncli lines)
regtest-up: regtest-bin
	$(GO) run ./scenarios/cmd/regtest up

## regtest-down: stop the network regtest-up started
regtest-down:
	$(GO) run ./scenarios/cmd/regtest down

## lint: gofmt and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fmt:
	gofmt -w $$(git ls-files '*.go')

tidy:
	$(GO) mod tidy

clean:
	rm -rf $(BIN) bench.out
