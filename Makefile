# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint proto proto-check proto-lint migrate demo bench clean install

# The client package (clients/python, billing-client) is installed from this
# checkout first: the server depends on it.
$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ./clients/python -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Regenerate the client package's billing_client/v1 from protos/ (messages, gRPC stubs, .pyi).
## generated/billing/v1 holds aliases of those modules for the server's imports.
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc --proto_path=billing_client/v1=protos/billing/v1 \
		--python_out=clients/python --pyi_out=clients/python --grpc_python_out=clients/python \
		protos/billing/v1/billing.proto

## Fail when the generated code differs from what protos/ produce.
proto-check: $(STAMP)
	$(PY) tools/check_generated.py

BUF := tools/buf/node_modules/.bin/buf
BUF_STAMP := tools/buf/node_modules/.installed

# The buf CLI at the version pinned in tools/buf/package-lock.json (npm package @bufbuild/buf).
$(BUF_STAMP): tools/buf/package.json tools/buf/package-lock.json
	npm ci --prefix tools/buf --no-audit --no-fund --loglevel=error
	touch $(BUF_STAMP)

## buf lint (rules in buf.yaml) and buf breaking against the previous contract.
proto-lint: $(BUF_STAMP)
	$(BUF) lint
	BUF=$(BUF) tools/buf_breaking.sh

## Apply database migrations to DATABASE_URL.
migrate: $(STAMP)
	$(VENV)/bin/billing-service migrate

## Run the service, the webhook gateway and (without STRIPE_SECRET_KEY) the Stripe emulator.
run: $(STAMP)
	$(PY) -m devtools.run_local

## Drive the whole flow against `make run` (in another terminal), printing each step.
demo: $(STAMP)
	$(PY) -m devtools.demo

test: $(STAMP)
	$(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
