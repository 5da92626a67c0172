# Fulfillment: two commands, `make run` and `make test`. Both start what they
# need themselves (the official emulators, stripe-mock, the functions).

STRIPE_MOCK_VERSION := v0.203.0
FUNCTION ?=
BIN := $(CURDIR)/bin

.PHONY: run test test-unit fuzz faults tools lint fmt vet clean

## run: the whole system locally (emulators, six functions, doubles), until Ctrl-C
run: tools
	go run ./infra/cmd/localstack

## test: every test; one emulator pair for the whole run, stopped at the end
test: tools
	go vet ./...
	go run ./infra/cmd/withemulators -- go test -count=1 -timeout 12m ./...

## test-unit: the tests that need no emulator
test-unit:
	go test -count=1 ./shared/subscription/... ./shared/license/... ./shared/logging/... ./shared/failure/... ./shared/httpx/... ./shared/faultpoint/... ./infra/topology/... ./infra/consistency/...

## fuzz: every fuzz target for FUZZTIME each (webhook signature and body,
## push and CloudEvent decoding, each consumer's Handle), one emulator pair
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	./shared/stripe:FuzzVerifySignature ./shared/stripe:FuzzParseAndNormalize \
	./shared/cloudevent:FuzzParsePush ./shared/entrypoint:FuzzCloudEventHandler \
	./functions/checkout-webhook:FuzzWebhook ./functions/payment-result:FuzzHandle \
	./functions/provisioning:FuzzHandle ./functions/crm-push:FuzzHandle \
	./functions/failed-payment-alerting:FuzzHandle
fuzz:
	go run ./infra/cmd/withemulators -- sh -c 'set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} $${t##*:}"; \
		go test -run "^$$" -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; done'

## faults: the fault-injection suite at a chosen size, e.g. make faults ORDERS=5000
ORDERS ?= 500
faults: tools
	FAULT_ORDERS=$(ORDERS) go run ./infra/cmd/withemulators -- go test -count=1 -v -timeout 60m -run . ./tests/faults/

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
