# make run  : set up and start the web server (http://127.0.0.1:5000) and a Celery worker
# make test : set up and run the whole test suite (DATABASE_URL etc. select real services)
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app wsgi

.PHONY: install translations run test lint bench clean-instance

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --disable-pip-version-check -q -r requirements.txt
	touch $@

MO := advisor_studio/translations/zh_Hans_CN/LC_MESSAGES/messages.mo

install: $(VENV)/.installed translations

# A file target: compiled only when the catalogue changed, so two `make test` runs side by side
# (as .ci/run does) never rewrite the .mo file under each other.
translations: $(MO)

$(MO): $(MO:.mo=.po) $(VENV)/.installed
	$(BIN)/pybabel compile -f -d advisor_studio/translations

run: install
	$(FLASK) db upgrade
	$(FLASK) seed-demo
	bash scripts/run-dev.sh

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .

bench: install
	for f in benchmarks/bench_*.py; do echo "== $$f"; $(BIN)/python $$f --quick || exit 1; done

# Update the zh_CN catalogue after adding or changing user-facing text.
messages: $(VENV)/.installed
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o advisor_studio/translations/messages.pot .
	$(BIN)/pybabel update -i advisor_studio/translations/messages.pot -d advisor_studio/translations --no-fuzzy-matching
