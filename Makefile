# Fulfillment: two commands, `make run` and `make test`. Both start what they
# need themselves (the official emulators, stripe-mock, the functions).

STRIPE_MOCK_VERSION := v0.203.0
KO_VERSION := v0.18.1
MAILPIT_VERSION := v1.33.1
TOFU_VERSION := v1.10.10
FUNCTION ?=
ENV ?=
DRY_RUN ?=
BIN := $(CURDIR)/bin

# Images: ko builds on a base assembled here (CA certificates only, put into
# ko's cache by infra/cmd/kobase), so no registry is needed to build. With
# REGISTRY set, ko pushes there; without it, images go to an OCI layout in
# .images/<name>.
export KOCACHE ?= $(CURDIR)/.kocache
REGISTRY ?=
KO_BASE = KO_DEFAULTBASEIMAGE=$$(go run ./infra/cmd/kobase)
KO_OFFLINE = KO_DOCKER_REPO=fulfillment.invalid/functions $(BIN)/ko build --bare --push=false --sbom=none
FUNCTIONS := $(notdir $(wildcard functions/*))

.PHONY: run test test-fast test-race tools tofu lint fmt vet clean image images deploy bench bench-renewal fuzz faults

## run: the whole system locally (emulators, every function, doubles), until Ctrl-C
run: tools
	go run ./infra/cmd/localstack

# The model test in make test replays one pinned exploration, so a run is
# repeatable, with every invariant enforced; make model explores a new seed
# each run.
MODEL_SEED ?= 1
MODEL_ENFORCED ?= all

## test: every test; one emulator pair for the whole run, stopped at the end
## (and prints the fault-injection suite's and the model test's figures, which they also assert)
test: tools
	go vet ./...
	@mkdir -p .localstack && rm -f .localstack/faults-report.txt .localstack/model-report.txt
	FAULT_REPORT=$(CURDIR)/.localstack/faults-report.txt MODEL_REPORT=$(CURDIR)/.localstack/model-report.txt \
		MODEL_SEED=$(MODEL_SEED) MODEL_INVARIANTS=$(MODEL_ENFORCED) \
		go run ./infra/cmd/withemulators -- go test -count=1 -timeout 12m ./...
	@cat .localstack/faults-report.txt .localstack/model-report.txt

## test-fast: every unit and component test, on the in-memory storage
## adapter: no JVM, no emulator (the contract suite's Firestore half, e2e and
## the fault suite, the model test (make model), and infra/image, which builds
## every image with ko, run in
## make test)
FAST_PKGS = $$(go list ./... | grep -v -e '/tests/e2e$$' -e '/tests/faults$$' -e '/shared/adapters/firestore$$' -e '/infra/image$$' -e '/tests/model$$' -e '/infra/bench$$')
test-fast: $(BIN)/stripe-mock $(BIN)/mailpit
	go vet ./...
	FULFILLMENT_TEST_STORE=memory go test -count=1 $(FAST_PKGS)

## test-race: test-fast's packages under the race detector (1-3 minutes
## on 2 cores; .ci/run runs it after make test). The model test is left out:
## single-threaded, and 8 minutes under -race
test-race: $(BIN)/stripe-mock $(BIN)/mailpit
	FULFILLMENT_TEST_STORE=memory go test -race -count=1 -timeout 10m $(FAST_PKGS)

## bench: every performance figure in one table (webhook handler, webhook
## process at concurrency 1/8/32, pipeline latency against the transport's
## floor, orders per second, the shipped images under podman), on the emulators
bench: tools
	go run ./infra/cmd/withemulators -- go run ./infra/cmd/bench

## bench-renewal: time one tick's fan-out over N due subscriptions on the emulators (N=100000 for the figure in the docs)
N ?= 100000
bench-renewal:
	RENEWAL_BENCH_N=$(N) go run ./infra/cmd/withemulators -- go test -count=1 -run '^$$' -bench BenchmarkRenewalFanOut -benchtime 1x -timeout 30m ./functions/renewal/

## bench-images: every function's images under podman: start-up to the first handled request, resident memory, exit after SIGTERM
.PHONY: bench-images
bench-images: tools
	go test -count=1 -run '^$$' -bench BenchmarkImages -benchtime 1x -timeout 10m ./infra/image/

## fuzz: every fuzz target for FUZZTIME each (webhook signature and body,
## push and CloudEvent decoding, each consumer's Handle, seat reports), one emulator pair
FUZZTIME ?= 10s
FUZZ_TARGETS := \
	./shared/adapters/stripe:FuzzVerifySignature ./shared/adapters/stripe:FuzzParseAndNormalize \
	./shared/runtime/cloudevent:FuzzParsePush ./shared/runtime/entrypoint:FuzzCloudEventHandler \
	./functions/checkout-webhook:FuzzWebhook ./functions/payment-result:FuzzHandle \
	./functions/provisioning:FuzzHandle ./functions/crm-push:FuzzHandle \
	./functions/failed-payment-alerting:FuzzHandle ./functions/renewal:FuzzHandle \
	./functions/seat-usage:FuzzSeatReport ./functions/notifications:FuzzHandle \
	./functions/licensing:FuzzEndpoints
fuzz:
	go run ./infra/cmd/withemulators -- sh -c 'set -e; for t in $(FUZZ_TARGETS); do \
		echo "== $${t%%:*} $${t##*:}"; \
		go test -run "^$$" -fuzz "^$${t##*:}$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; done'

## faults: the fault-injection suite at a chosen size, e.g. make faults ORDERS=5000
ORDERS ?= 500
faults: tools
	FAULT_ORDERS=$(ORDERS) go run ./infra/cmd/withemulators -- go test -count=1 -v -timeout 60m -run . ./tests/faults/

## model: the model-based test of money and access, e.g. make model JOURNEYS=10000 (fails on a violated invariant)
JOURNEYS ?= 10000
.PHONY: model
model:
	MODEL_JOURNEYS=$(JOURNEYS) go test ./tests/model/ -run TestModel -count=1 -v

## tools: stripe-mock, ko and Mailpit (the local and test mail server), pinned, into ./bin;
## podman and runc for running the images (apt-get, as root, when missing)
tools: $(BIN)/stripe-mock $(BIN)/ko $(BIN)/mailpit podman

.PHONY: podman
podman:
	@sh infra/container/setup-podman.sh

$(BIN)/stripe-mock:
	GOBIN=$(BIN) go install github.com/stripe/stripe-mock@$(STRIPE_MOCK_VERSION)

$(BIN)/ko:
	GOBIN=$(BIN) go install github.com/google/ko@$(KO_VERSION)

# Mailpit's web UI (server/ui/dist) is built with npm and is not in its Go
# module: the module is built with the UI bundled when node and npm are there
# (its bundler only, with the UI's dependencies as this machine's npm registry
# serves them: rapidoc 12, for the API docs page, is not served, 9.3.8 is),
# and without the UI (API and SMTP only) otherwise.
$(BIN)/mailpit:
	@set -e; mkdir -p $(BIN); src=$$(go mod download -json github.com/axllent/mailpit@$(MAILPIT_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	if command -v npm >/dev/null && command -v node >/dev/null; then \
		tmp=$$(mktemp -d); cp -r "$$src/." "$$tmp"; chmod -R u+w "$$tmp"; cd "$$tmp"; rm -f package-lock.json; \
		node -e 'const f="package.json",j=JSON.parse(require("fs").readFileSync(f));const keep=["@vue/compiler-sfc","esbuild","esbuild-plugin-vue-next","esbuild-sass-plugin"];j.devDependencies=Object.fromEntries(Object.entries(j.devDependencies).filter(([k])=>keep.includes(k)));j.dependencies.rapidoc="9.3.8";require("fs").writeFileSync(f,JSON.stringify(j,null,2))'; \
		(npm install --ignore-scripts --no-audit --no-fund --loglevel=error && MINIFY=true node esbuild.config.mjs && \
			GOFLAGS=-mod=mod go build -o $(BIN)/mailpit .) || rm -f $(BIN)/mailpit; cd /; rm -rf "$$tmp"; \
	fi; \
	if [ ! -x $(BIN)/mailpit ]; then echo "mailpit: building without its web UI (no node/npm, or its build failed): API and SMTP only" >&2; \
		GOBIN=$(BIN) go install github.com/axllent/mailpit@$(MAILPIT_VERSION); fi

## image: one function's images, both entry points: make image FUNCTION=<name> [REGISTRY=<repo>]
image: $(BIN)/ko
	@test -n "$(FUNCTION)" && test -d functions/$(FUNCTION) || { echo "usage: make image FUNCTION=<one of: $(FUNCTIONS)>" >&2; exit 2; }
ifeq ($(REGISTRY),)
	$(KO_BASE) $(KO_OFFLINE) --oci-layout-path=$(CURDIR)/.images/$(FUNCTION) ./functions/$(FUNCTION)/cmd/gcp ./functions/$(FUNCTION)/cmd/knative
else
	$(KO_BASE) KO_DOCKER_REPO=$(REGISTRY)/$(FUNCTION) $(BIN)/ko build --bare ./functions/$(FUNCTION)/cmd/gcp
	$(KO_BASE) KO_DOCKER_REPO=$(REGISTRY)/$(FUNCTION)-knative $(BIN)/ko build --bare ./functions/$(FUNCTION)/cmd/knative
endif

## images: every function's images, offline, into .images/all
images: $(BIN)/ko
	$(KO_BASE) $(KO_OFFLINE) --oci-layout-path=$(CURDIR)/.images/all $(foreach f,$(FUNCTIONS),./functions/$(f)/cmd/gcp ./functions/$(f)/cmd/knative)

## deploy: one function: new revision, canary, watch, promote or roll back
##   make deploy FUNCTION=<name> ENV=<staging|production> [DRY_RUN=1] [DEPLOY_FLAGS="-canary 25 -watch 15m"]
##   on Knative: make deploy FUNCTION=<name> ENV=<kube context> KNATIVE=1 REGISTRY=<repo> PROMETHEUS=<url>
KNATIVE ?=
PROMETHEUS ?=
deploy: $(if $(DRY_RUN),,$(BIN)/ko)
	@go run ./infra/cmd/deploy -function=$(FUNCTION) -env=$(ENV) $(if $(DRY_RUN),-dry-run) \
		$(if $(KNATIVE),-knative -registry=$(REGISTRY) -prometheus=$(PROMETHEUS)) $(DEPLOY_FLAGS)

## tofu: OpenTofu, pinned, into ./bin. `go install` refuses it (its go.mod has
## replace directives), so it is built inside its own module (~5 min of CPU).
tofu: $(BIN)/tofu

$(BIN)/tofu:
	@set -e; src=$$(go mod download -json github.com/opentofu/opentofu@$(TOFU_VERSION) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p'); \
	tmp=$$(mktemp -d); cp -r "$$src/." "$$tmp"; chmod -R u+w "$$tmp"; \
	mkdir -p $(BIN); (cd "$$tmp" && go build -ldflags="-X github.com/opentofu/opentofu/version.dev=no" -o $(BIN)/tofu ./cmd/tofu); rm -rf "$$tmp"

## lint: go vet, gofmt, and `tofu fmt -check` on terraform/ (with ./bin/tofu;
## without it, the HCL format check of terraform/invariants_test.go)
lint: vet
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	@if [ -x $(BIN)/tofu ]; then \
		TF_CLI_CONFIG_FILE=/dev/null $(BIN)/tofu fmt -check -recursive -diff terraform; \
	else \
		echo "lint: no ./bin/tofu (make tofu builds it): checking terraform/ formatting with hclwrite instead"; \
		go test -count=1 -run TestEveryFileParsesAndIsFormatted ./terraform/; \
	fi

vet:
	go vet ./...

fmt:
	gofmt -w .
	@if [ -x $(BIN)/tofu ]; then TF_CLI_CONFIG_FILE=/dev/null $(BIN)/tofu fmt -recursive terraform; fi

clean:
	rm -rf $(BIN) .localstack .kocache .images
