# Development entry points. `make test` installs the AWS emulator (moto_server) into .venv once,
# then runs every test against it, and checks the Helm chart (`make chart-test`). CloudWatch is
# served over RPC-v2 CBOR by tests/integration/harness/cloudwatch_cbor.py in front of moto (moto
# speaks only its Query protocol); it runs on the same .venv and needs botocore's CBOR parser.

VENV        := .venv
MOTO_SERVER := $(CURDIR)/$(VENV)/bin/moto_server
# Created only after a successful install, so a failed install is retried next time.
VENV_STAMP  := $(VENV)/.moto-installed
# Helm's own library (helm-python-sdk embeds Helm v4: no helm binary), the chart test runner, and
# lupa (Lua in Python; Lua 5.1 as Argo CD's gopher-lua) to run the Argo CD health check of deploy/argocd/ over status fixtures.
CHART_STAMP := $(VENV)/.chart-tools-installed

.PHONY: venv test lint build chart-test crds demo bench iam-policies soak

venv: $(VENV_STAMP)

$(VENV)/bin/python:
	python3 -m venv $(VENV)

$(VENV_STAMP): Makefile | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check 'moto[server]>=5.2,<5.3' \
		'botocore>=1.42,<2'
	touch $@

$(CHART_STAMP): Makefile | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check \
		'helm-python-sdk>=0.2.2,<0.3' 'PyYAML>=6,<7' 'pytest>=8,<10' 'lupa>=2.2,<3'
	touch $@

test: venv chart-test
	MOTO_SERVER=$(MOTO_SERVER) cargo test --all-targets

# The design's speed and memory targets (README "Benchmarks"), measured in release mode against
# the emulator; exits non-zero when one is missed.
bench: venv
	MOTO_SERVER=$(MOTO_SERVER) cargo bench --bench targets

# Lints charts/alertops strictly and checks what it renders (charts/alertops/ci/*-values.yaml):
# kinds, every RBAC rule, probes, security contexts, CRDs on install and upgrade, monitoring;
# and runs the Argo CD health check (deploy/argocd/) over status fixtures.
chart-test: $(CHART_STAMP)
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider charts/alertops/tests

# Regenerates crds/ from the Rust types, copies them into the chart (kept byte-identical; the
# chart renders them as templates so that upgrades update them) and
# regenerates the CRD reference in docs/.
crds:
	cargo run --quiet -- crds --output-dir crds
	cp crds/*.yaml charts/alertops/files/crds/
	cargo run --quiet -- crds --reference > docs/crd-reference.md

# The IAM policies of deploy/iam/ with their placeholders filled, ready for `aws iam
# create-policy --policy-document file://...` (README "Security model"):
#   make iam-policies CLUSTER_ID=prod-eu-1 ACCOUNT_ID=123456789012 \
#     EMR_SERVICE_ROLE_ARN=arn:aws:iam::123456789012:role/EMR_DefaultRole_V2 \
#     EMR_INSTANCE_PROFILE_ROLE_ARN=arn:aws:iam::123456789012:role/EMR_EC2_DefaultRole
IAM_OUT ?= target/iam
iam-policies:
	@test -n "$(CLUSTER_ID)" -a -n "$(ACCOUNT_ID)" -a -n "$(EMR_SERVICE_ROLE_ARN)" -a -n "$(EMR_INSTANCE_PROFILE_ROLE_ARN)" \
		|| { echo "set CLUSTER_ID, ACCOUNT_ID, EMR_SERVICE_ROLE_ARN and EMR_INSTANCE_PROFILE_ROLE_ARN"; exit 2; }
	mkdir -p $(IAM_OUT)
	for principal in controller workload retry interact plan; do \
		sed -e 's|EMR_SERVICE_ROLE_ARN|$(EMR_SERVICE_ROLE_ARN)|g' \
		    -e 's|EMR_INSTANCE_PROFILE_ROLE_ARN|$(EMR_INSTANCE_PROFILE_ROLE_ARN)|g' \
		    -e 's|CLUSTER_ID|$(CLUSTER_ID)|g' -e 's|ACCOUNT_ID|$(ACCOUNT_ID)|g' \
		    deploy/iam/$$principal.json > $(IAM_OUT)/$$principal.json; \
	done
	@echo "wrote $(IAM_OUT)/{controller,workload,retry,interact,plan}.json"

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

build:
	cargo build

# The local demo: the AWS emulator, a Slack stand-in, `alertops local` on examples/, and the
# users' scenarios played end to end. Leaves nothing running.
demo: venv
	cargo build --quiet
	$(VENV)/bin/python demo/demo.py --alertops target/debug/alertops --moto-server $(MOTO_SERVER)

# Fault injection (not part of `make test`): several routes and a digest through `alertops local`
# behind an AWS fault proxy, with a Slack outage, 429 storms and kill -9; prints the delivery
# table (README "Reliability") and fails when an alert was lost. About 10 minutes.
soak: venv
	cargo build --quiet
	$(VENV)/bin/python soak/soak.py --alertops target/debug/alertops --moto-server $(MOTO_SERVER) $(SOAK_ARGS)
