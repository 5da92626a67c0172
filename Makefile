# Fulfillment: two commands, `make run` and `make test`. Both start what they
# need themselves (the official emulators, stripe-mock, the functions).

STRIPE_MOCK_VERSION := v0.203.0
FUNCTION ?=
BIN := $(CURDIR)/bin

.PHONY: run test test-unit bench-renewal tools lint fmt vet clean

## run: the whole system locally (emulators, six functions, doubles), until Ctrl-C
run: tools
	go run ./infra/cmd/localstack

## test: every test; one emulator pair for the whole run, stopped at the end
test: tools
	go vet ./...
	go run ./infra/cmd/withemulators -- go test -count=1 -timeout 12m ./...

## bench-renewal: time one tick's fan-out over N due subscriptions on the emulators (N=100000 for the figure in the docs)
N ?= 100000
bench-renewal:
	RENEWAL_BENCH_N=$(N) go run ./infra/cmd/withemulators -- go test -count=1 -run '^$$' -bench BenchmarkRenewalFanOut -benchtime 1x -timeout 30m ./functions/renewal/

## test-unit: the tests that need no emulator
test-unit:
	go test -count=1 ./shared/subscription/... ./shared/proration/... ./shared/clock/... ./shared/license/... ./shared/logging/... ./shared/failure/... ./infra/topology/...

## tools: stripe-mock, pinned, into ./bin
tools: $(BIN)/stripe-mock

$(BIN)/stripe-mock:
	GOBIN=$(BIN) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

lint: vet
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)

vet:
	go vet ./...

fmt:
	gofmt -w .

clean:
	rm -rf $(BIN) .localstack
