# Two commands matter: `make up` runs the stack, `make test` runs every test. Both install what is
# missing first; stamps make a second run install nothing.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
.DELETE_ON_ERROR:

PY_DIR   := python-model-service
VENV     := $(PY_DIR)/.venv
PY       := $(abspath $(VENV))/bin/python
JAVA_DIR := java-gateway
WEB_DIR  := web
GATEWAY_JAR := $(JAVA_DIR)/target/gateway.jar
MVN      := mvn -B -q -f $(JAVA_DIR)/pom.xml
# Compile with the default JDK (17); run on the newest JDK present (21+ turns on virtual threads).
JAVA_RUN_HOME := $(shell ls -d /usr/lib/jvm/temurin-2[1-9]* /usr/lib/jvm/temurin-[3-9][0-9]* 2>/dev/null | sort -V | tail -n 1)
export JAVA_RUN_HOME

JAVA_SOURCES := $(shell find $(JAVA_DIR)/src/main $(WEB_DIR) -type f -not -path '*/node_modules/*' 2>/dev/null)

.PHONY: help setup setup-python setup-java setup-web setup-browser setup-services up test lint \
        test-python test-java test-e2e test-web bench demo-model clean \
        setup-containers runtime-lock images test-images

help:
	@echo "make up          install what is missing, build, and run every tier (Ctrl-C stops)"
	@echo "make test        install what is missing and run every test of every tier"
	@echo "make bench       run the benchmarks (results under bench/results/)"
	@echo "make lint        ruff + mypy (Python); Java formatting is checked inside mvn verify"
	@echo "make demo-model  build the bundled demo model (cached)"
	@echo "make images      build both container images with podman (local Debian-made base images)"
	@echo "make test-images run the compose stack's cpu and scale profiles from those images and check them"
	@echo "make clean       remove build outputs and caches (keeps the Python venv: make clean-all)"

## ---- install --------------------------------------------------------------------------------
setup: setup-python setup-java setup-web

setup-python: $(VENV)/.installed
$(VENV)/.installed: $(PY_DIR)/requirements.lock
	@echo "==> Python: creating $(VENV) from requirements.lock"
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --disable-pip-version-check -q -r $(PY_DIR)/requirements.lock
	touch $@

setup-java: $(GATEWAY_JAR)
$(GATEWAY_JAR): $(JAVA_DIR)/pom.xml $(JAVA_SOURCES) $(WEB_DIR)/node_modules/.installed
	@echo "==> Java: building $(GATEWAY_JAR)"
	$(MVN) -DskipTests -Dspotless.check.skip=true package
	touch $@

setup-web: $(WEB_DIR)/node_modules/.installed
$(WEB_DIR)/node_modules/.installed: $(WEB_DIR)/package-lock.json
	@echo "==> Web: npm ci"
	cd $(WEB_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Debian's Chromium for the browser tests (test tools cannot download their own browsers here), and
# a CJK font so that Chinese renders in it (and in the screenshots) instead of empty boxes.
setup-browser:
	@command -v chromium >/dev/null 2>&1 || scripts/apt-install.sh chromium
	@scripts/apt-install.sh --if-missing '/usr/share/fonts/opentype/noto/NotoSansCJK-*' fonts-noto-cjk

# PostgreSQL and Redis servers for the tests that need real ones; nginx for the load balancer's
# config check and the tests that put it in front of several gateways.
setup-services:
	@scripts/apt-install.sh --if-missing '/usr/lib/postgresql/*/bin/postgres' postgresql
	@scripts/apt-install.sh --if-missing /usr/bin/redis-server redis-server
	@scripts/apt-install.sh --if-missing /usr/sbin/nginx nginx

# podman and what it needs here (runc: crun refuses this machine's hybrid cgroup layout; netavark and
# aardvark-dns: container names resolve on a compose network), debootstrap for the local base images,
# and podman-compose from PyPI in a venv of its own: Debian's 1.0.3 knows no compose profiles.
PODMAN_COMPOSE_VENV := .cache/podman-compose
setup-containers: $(PODMAN_COMPOSE_VENV)/.installed
	@scripts/apt-install.sh --if-missing /usr/bin/podman podman
	@scripts/apt-install.sh --if-missing /usr/sbin/runc runc
	@scripts/apt-install.sh --if-missing /usr/lib/podman/netavark netavark aardvark-dns
	@scripts/apt-install.sh --if-missing /usr/sbin/debootstrap debootstrap
$(PODMAN_COMPOSE_VENV)/.installed:
	python3 -m venv $(PODMAN_COMPOSE_VENV)
	$(PODMAN_COMPOSE_VENV)/bin/pip install --disable-pip-version-check -q podman-compose==1.6.0
	touch $@

# python-model-service/requirements-runtime.lock (what the images install) from requirements.lock.
runtime-lock: setup-python
	$(PY) scripts/runtime-lock.py

## ---- container images -------------------------------------------------------------------------
# Each image is built again when what goes into it changed (or it is gone): a stamp per image.
IMAGE_STAMP_DIR := .cache/images
BASES_INPUTS := scripts/build-base-images.sh scripts/build-images.sh deploy/bases/Containerfile \
                deploy/bases/postgres-entrypoint.sh deploy/bases/nginx-entrypoint.sh \
                deploy/bases/redis-entrypoint.sh
MODEL_IMAGE_INPUTS := python-model-service/Dockerfile python-model-service/requirements-runtime.lock \
                      $(shell find $(PY_DIR)/app -type f -not -path '*/__pycache__/*')
GATEWAY_IMAGE_INPUTS := java-gateway/Dockerfile deploy/docker/HealthCheck.java $(JAVA_DIR)/pom.xml \
                        $(JAVA_SOURCES)

images: setup-containers
	@source scripts/podman-env.sh && \
	  for i in gateway=llm-service/gateway:0.1.0 model-service=llm-service/model-service:0.1.0-cpu; do \
	    podman image exists "$${i#*=}" || rm -f "$(IMAGE_STAMP_DIR)/$${i%%=*}.built"; \
	  done
	@$(MAKE) --no-print-directory $(IMAGE_STAMP_DIR)/gateway.built $(IMAGE_STAMP_DIR)/model-service.built
$(IMAGE_STAMP_DIR)/gateway.built: $(GATEWAY_IMAGE_INPUTS) $(BASES_INPUTS)
	scripts/build-images.sh gateway
	touch $@
$(IMAGE_STAMP_DIR)/model-service.built: $(MODEL_IMAGE_INPUTS) $(BASES_INPUTS)
	scripts/build-images.sh model-service
	touch $@

# Not part of `make test`: a cold run builds the images (tens of minutes on two cores), and the
# checks start the stacks for real. The timings are in README.md (Docker Compose).
test-images: setup-python images
	source scripts/podman-env.sh && PODMAN_COMPOSE=$(abspath $(PODMAN_COMPOSE_VENV))/bin/podman-compose \
	  $(PY) -m pytest -q -rP -c tests/pytest.ini -p no:cacheprovider --run-images tests/test_images.py

demo-model: setup-python
	@cd $(PY_DIR) && $(PY) -m app.demo_model

## ---- run --------------------------------------------------------------------------------------
up: setup
	@scripts/up.sh

## ---- test -------------------------------------------------------------------------------------
test: setup setup-browser setup-services
	@$(MAKE) --no-print-directory lint test-python test-java test-e2e test-web
	@echo "==> all tiers passed"

lint: setup-python
	cd $(PY_DIR) && $(PY) -m ruff check . && $(PY) -m ruff format --check . && $(PY) -m mypy
	$(PY) -m ruff check --config $(PY_DIR)/pyproject.toml tests bench harness
	$(PY) -m ruff format --config $(PY_DIR)/pyproject.toml --check tests bench harness
	$(PY) -m mypy --config-file $(PY_DIR)/pyproject.toml harness

test-python: setup-python demo-model
	cd $(PY_DIR) && $(PY) -m pytest -q

# --model-service: the demo model service runs beside the Java tests, for the Spring AI test
# against the real model (harness/services.py), which must then run.
test-java: setup-python setup-java setup-services demo-model
	scripts/test-java.sh --model-service

test-e2e: setup setup-services demo-model
	$(PY) -m pytest -q -c tests/pytest.ini tests

test-web: setup-web setup-browser setup setup-services demo-model
	cd $(WEB_DIR) && npm test

## ---- bench ------------------------------------------------------------------------------------
bench: setup demo-model
	cd bench && $(PY) serving_bench.py
	cd bench && $(PY) grammar_bench.py --part serving
	cd bench && $(PY) multiturn_bench.py
	cd bench && $(PY) gateway_bench.py
	cd bench && $(PY) fault_bench.py
	cd bench && $(PY) fairness_bench.py

clean:
	rm -rf $(JAVA_DIR)/target $(PY_DIR)/.cache .cache bench/results/*.tmp
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	rm -rf $(PY_DIR)/.pytest_cache $(PY_DIR)/.mypy_cache $(PY_DIR)/.ruff_cache $(WEB_DIR)/node_modules

clean-all: clean
	rm -rf $(VENV)
