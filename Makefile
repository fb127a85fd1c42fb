# reviewcause — 差评归因. `make` lists the targets.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
MODEL  := models/reviewcause.joblib
IN     ?= data/sample_reviews.csv
OUT    ?= predictions.csv
JOBS   ?= 2
PORT   ?= 5000
ENGINE ?= local
SPARK_STAMP := $(VENV)/.installed-spark
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
# $(call q,$(value IN)): one shell word whatever the file name holds (spaces, brackets, quotes, $);
# options as --output=… and the input after --, so a name that begins with '-' is no option
q = '$(subst ','\'',$(1))'

.PHONY: help install install-spark model train score suspects report eval eval-sets test serve ui bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_./-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  variables: IN=$(IN) OUT=$(OUT) JOBS=$(JOBS) PYTHON=$(PYTHON) MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP) ## create .venv and install the project with its test tools

$(SPARK_STAMP): $(STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,spark]'
	@touch $@

install-spark: $(SPARK_STAMP) ## add the optional Spark engine (PySpark; needs a Java 17+ runtime)

data/labels.csv: data/labelling/consolidate.py $(wildcard data/labelling/readings/*.csv) | $(STAMP) ## rebuild the double-read labels and the agreement table from the readings
	$(PY) data/labelling/consolidate.py

data/authored.jsonl: data/authoring/authored_source.py | $(STAMP) ## rebuild the authored training reviews from data/authoring/authored_source.py
	$(PY) data/authoring/authored_source.py $@

data/authored_categories.jsonl: data/authoring/categories.py $(wildcard data/authoring/categories/*.csv) | $(STAMP) ## rebuild the double-read reviews of other categories from their readings
	$(PY) data/authoring/categories.py build

model: $(STAMP) ## the default model: kept when current (content hash of its inputs), else trained
	$(PY) -m pipeline ensure-model

train: $(STAMP) ## cross-validate, fit and register the model (tracked in MLflow)
	$(PY) -m pipeline train

score: model ## score IN (default: the shipped sample) into OUT=predictions.csv (ENGINE=spark [SPARK_MASTER=…]: on Spark)
ifeq ($(ENGINE),spark)
	@$(MAKE) --no-print-directory $(SPARK_STAMP)
	$(PY) -m pipeline score --output=$(call q,$(value OUT)) --engine spark $(if $(value SPARK_MASTER),--master=$(call q,$(value SPARK_MASTER))) -- $(call q,$(value IN))
else
	$(PY) -m pipeline score --output=$(call q,$(value OUT)) --jobs $(JOBS) -- $(call q,$(value IN))
endif

suspects: $(STAMP) ## appeal export: suspected malicious reviews of IN=predictions.csv into OUT=suspects.csv
	$(PY) -m pipeline suspects --output=$(call q,$(if $(filter command line,$(origin OUT)),$(value OUT),suspects.csv)) -- $(call q,$(if $(filter command line,$(origin IN)),$(value IN),predictions.csv))

report: $(STAMP) ## the seller's view of IN=predictions.csv: one offline HTML page OUT=report.html (PNG=dir: charts as PNG too)
	$(PY) -m pipeline report --output=$(call q,$(if $(filter command line,$(origin OUT)),$(value OUT),report.html))$(if $(value PNG), --png=$(call q,$(value PNG))) -- $(call q,$(if $(filter command line,$(origin IN)),$(value IN),predictions.csv))

eval: $(STAMP) ## cross-validated evaluation with per-cause and per-slice figures (tracked in MLflow)
	$(PY) -m pipeline evaluate

eval-sets: model ## the shipped model on the two evaluation-only sets: foreign-language (AliExpress) and Hong Kong Cantonese reviews
	$(PY) -m pipeline evaluate data/foreign_reviews.csv
	$(PY) -m pipeline evaluate data/cantonese_reviews.csv

test: $(STAMP) ## run the test suite
	$(PY) -m pytest -q

serve: model ## serve the shipped model (what score uses) over REST on http://127.0.0.1:PORT/invocations (same columns as the CLI)
	$(PY) -m pipeline serve --port $(PORT)

ui: $(STAMP) ## the MLflow UI on the project's runs page (one worker; PORT=… to change)
	@$(PY) -c "from pipeline.train import ui_url; print('open', ui_url($(PORT)))"
	$(VENV)/bin/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --workers 1 --host 127.0.0.1 --port $(PORT)

bench: model ## benchmark I/O, normalise, segment and scoring end to end against jieba at 200k and 1M rows (SIZES=…); figures to bench/
	$(PY) bench/bench.py --jobs $(JOBS) $(if $(SIZES),--sizes $(SIZES))

clean: ## remove the virtualenv and caches (keeps the shipped model and mlflow.db)
	rm -rf $(VENV) .cache .pytest_cache .hypothesis
