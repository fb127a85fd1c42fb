"""Where the project's files live. Paths are resolved from the repository, which is installed
editable (``pip install -e .``), so ``data/`` and ``models/`` are the repo's own folders."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
RAW = DATA / "raw"
MODELS = ROOT / "models"
USERDICT = DATA / "userdict.txt"
SAMPLE = DATA / "sample_reviews.csv"
DEFAULT_MODEL = MODELS / "reviewcause.joblib"
CACHE = ROOT / ".cache"
