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
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db
# $(call q,$(IN)): one shell word whatever the file name holds (spaces, brackets, quotes, $)
q = '$(subst ','\'',$(1))'

TRAIN_INPUTS := data/raw/labels_dev.csv data/raw/constructed_dev.jsonl data/raw/online_shopping_neg.csv \
                data/raw/jd_aircon.csv $(wildcard data/authored.jsonl data/jd_labels.csv) data/userdict.txt \
                pipeline/model.py pipeline/cues.py pipeline/normalize.py pipeline/segment.py \
                pipeline/train.py pipeline/data.py pipeline/taxonomy.py

.PHONY: help install train score suspects report eval test ui bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-9s %s\n", $$1, $$2}'
	@echo "  variables: IN=$(IN) OUT=$(OUT) JOBS=$(JOBS) PYTHON=$(PYTHON) MLFLOW_TRACKING_URI=$(MLFLOW_TRACKING_URI)"

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@

install: $(STAMP) ## create .venv and install the project with its test tools

data/authored.jsonl: data/authoring/authored_source.py | $(STAMP)
	$(PY) data/authoring/authored_source.py $@

$(MODEL): $(STAMP) $(TRAIN_INPUTS)
	$(PY) -m pipeline train

train: $(STAMP) ## cross-validate, fit and register the model (tracked in MLflow)
	$(PY) -m pipeline train

score: $(MODEL) ## score IN (default: the shipped sample) into OUT=predictions.csv
	$(PY) -m pipeline score $(call q,$(IN)) -o $(call q,$(OUT)) --jobs $(JOBS)

suspects: $(STAMP) ## appeal export: suspected malicious reviews of IN=predictions.csv into OUT=suspects.csv
	$(PY) -m pipeline suspects $(call q,$(if $(filter command line,$(origin IN)),$(IN),predictions.csv)) -o $(call q,$(if $(filter command line,$(origin OUT)),$(OUT),suspects.csv))

report: $(STAMP) ## the seller's view of IN=predictions.csv: one offline HTML page OUT=report.html (PNG=dir: charts as PNG too)
	$(PY) -m pipeline report $(call q,$(if $(filter command line,$(origin IN)),$(IN),predictions.csv)) -o $(call q,$(if $(filter command line,$(origin OUT)),$(OUT),report.html))$(if $(PNG), --png $(call q,$(PNG)))

eval: $(STAMP) ## cross-validated evaluation with per-cause and per-slice figures (tracked in MLflow)
	$(PY) -m pipeline evaluate

test: $(STAMP) ## run the test suite
	$(PY) -m pytest -q

ui: $(STAMP) ## open the MLflow UI on http://127.0.0.1:5000 (PORT=… to change)
	$(VENV)/bin/mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --host 127.0.0.1 --port $(PORT)

bench: $(MODEL) ## benchmark I/O, normalise, segment and scoring at 10k/100k/1M rows (SIZES=…); figures to bench/
	$(PY) bench/bench.py --jobs $(JOBS) $(if $(SIZES),--sizes $(SIZES))

clean: ## remove the virtualenv, caches and trained model (keeps mlflow.db)
	rm -rf $(VENV) .cache .pytest_cache .hypothesis $(MODEL) models/reviewcause.json
