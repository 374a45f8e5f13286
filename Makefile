# Development entry points. `make test` installs the AWS emulator (moto_server) into .venv once,
# then runs every test against it.

VENV        := .venv
MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server
# Created only after a successful install, so a failed install is retried next time.
VENV_STAMP  := $(VENV)/.moto-installed

.PHONY: venv test lint build

venv: $(VENV_STAMP)

$(VENV_STAMP): Makefile
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.2,<5.3'
	touch $@

test: venv
	MOTO_SERVER=$(MOTO_SERVER) cargo test --all-targets

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

build:
	cargo build
