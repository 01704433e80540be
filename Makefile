# Tidings — the two commands a newcomer needs are `make run` and `make test`.
# Everything is installed into .venv; system packages (Dovecot for the IMAP tests,
# the libraries Qt needs) come from apt-get when they are missing.

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
APT    := DEBIAN_FRONTEND=noninteractive apt-get -y -q -o Dpkg::Use-Pty=0

.PHONY: install run test lint format bench bench-deps system-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV) || { $(APT) update && $(APT) install python3-venv && python3 -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# System packages the tests need: Dovecot (IMAP server for integration tests) and the
# shared libraries Qt loads. Installed only when missing; apt-get needs root.
system-deps:
	@missing=""; \
	command -v dovecot >/dev/null 2>&1 || missing="$$missing dovecot-imapd"; \
	ldconfig -p | grep -q 'libEGL.so.1' || missing="$$missing libegl1"; \
	ldconfig -p | grep -q 'libxkbcommon.so.0' || missing="$$missing libxkbcommon0"; \
	ldconfig -p | grep -q 'libfontconfig.so.1' || missing="$$missing libfontconfig1"; \
	ldconfig -p | grep -q 'libnss3.so' || missing="$$missing libnss3"; \
	if [ -n "$$missing" ]; then \
	  echo "installing system packages:$$missing"; \
	  $(APT) update >/dev/null && $(APT) install --no-install-recommends $$missing >/dev/null; \
	fi

run: install system-deps
	$(PY) main.py --demo

lint: install
	$(VENV)/bin/ruff check --no-cache .
	$(VENV)/bin/ruff format --no-cache --check .
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# Qt tests run headless; `make run` opens a real window, so these apply to `test` only.
test: export QT_QPA_PLATFORM ?= offscreen
test: export QTWEBENGINE_CHROMIUM_FLAGS ?= --no-sandbox --disable-gpu
test: install system-deps lint
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Peers measured in the same run: mbsync (isync) and notmuch.
bench-deps:
	@missing=""; \
	command -v mbsync >/dev/null 2>&1 || missing="$$missing isync"; \
	command -v notmuch >/dev/null 2>&1 || missing="$$missing notmuch"; \
	if [ -n "$$missing" ]; then \
	  echo "installing benchmark peers:$$missing"; \
	  $(APT) update >/dev/null && $(APT) install --no-install-recommends $$missing >/dev/null; \
	fi

bench: install system-deps bench-deps
	$(PY) bench/ingest.py
	$(PY) bench/sync.py
	$(PY) bench/actions.py
	$(PY) bench/outbox.py
	$(PY) bench/search.py
	$(PY) bench/ui.py
	$(PY) bench/conversation.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis *.egg-info
