"""Stage 2 — word segmentation with jieba and the project's domain dictionary.

Two backends give the same tokens:

* ``jieba`` — the reference: a private ``jieba.Tokenizer`` (never the global ``jieba.dt``),
  precise mode, HMM off, with ``data/userdict.txt`` loaded; its cache file is pinned under
  ``.cache/`` and its "Building prefix dict" logging is silenced.
* ``rjieba`` — the Rust port of jieba with the same dictionary and the same user words, many times
  faster. HMM new-word discovery is off on both, which is what makes the outputs identical
  (``tests/test_segment.py`` checks this on thousands of real reviews).

The backend is a per-process choice (``use_backend`` or ``REVIEWCAUSE_SEGMENTER``); the model
calls the module-level :func:`segment`, so a pickled model works with either.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from pathlib import Path

from pipeline.paths import CACHE, USERDICT

BACKENDS = ("rjieba", "jieba")
DEFAULT_BACKEND = "rjieba"
ENV_VAR = "REVIEWCAUSE_SEGMENTER"

_state = {"backend": os.environ.get(ENV_VAR, DEFAULT_BACKEND), "userdict": None}


def userdict_text(path: Path = USERDICT) -> str:
    """The user dictionary in force: the one a loaded model carries, else ``data/userdict.txt``."""
    if _state["userdict"] is not None:
        return _state["userdict"]
    return path.read_text(encoding="utf-8")


def use_userdict(text: str | None) -> None:
    """Segment with this user dictionary (a fitted model carries its own, so it needs no file of
    the repository). Tokenizers are rebuilt only when the dictionary changes."""
    if text is not None and text != _state["userdict"]:
        _state["userdict"] = text
        _jieba.cache_clear()
        _rjieba.cache_clear()


def _cache_dir() -> Path:
    """jieba's cache folder: the repo's ``.cache/`` when writable, else a per-user temp folder."""
    import tempfile

    for where in (CACHE, Path(tempfile.gettempdir()) / "reviewcause-cache"):
        try:
            where.mkdir(parents=True, exist_ok=True)
            if os.access(where, os.W_OK):
                return where
        except OSError:
            continue
    return Path(tempfile.mkdtemp())


def read_userdict(path: Path = USERDICT) -> list[tuple[str, int, str | None]]:
    """Entries ``(word, freq, tag)`` of a jieba-format user dictionary (``word freq [tag]``)."""
    entries = []
    for n, line in enumerate(userdict_text(path).splitlines(), 1):
        parts = line.split()
        if not parts or parts[0].startswith("#"):
            continue
        if len(parts) < 2 or not parts[1].isdigit():
            raise ValueError(f"{path}:{n}: expected 'word freq [tag]', got {line!r}")
        entries.append((parts[0], int(parts[1]), parts[2] if len(parts) > 2 else None))
    return entries


@lru_cache(maxsize=None)
def _jieba():
    import jieba

    jieba.setLogLevel(logging.WARNING)
    tk = jieba.Tokenizer()
    tk.tmp_dir = str(_cache_dir())
    tk.initialize()
    for word, freq, tag in read_userdict():
        # jieba adds a re-weighted word's new frequency to the total without removing the old
        # one; jieba-rs replaces it. Keep the total right so both backends agree token for token.
        old = tk.FREQ.get(word, 0)
        tk.add_word(word, freq, tag)
        tk.total -= old
    return tk


@lru_cache(maxsize=None)
def _rjieba():
    import rjieba

    tk = rjieba.Jieba()
    for word, freq, tag in read_userdict():
        tk.add_word(word, freq, tag)
    return tk


def use_backend(name: str) -> None:
    """Choose the segmentation backend for this process."""
    if name not in BACKENDS:
        raise ValueError(f"unknown segmenter {name!r}; choose one of {', '.join(BACKENDS)}")
    _state["backend"] = name


def current_backend() -> str:
    name = _state["backend"]
    if name not in BACKENDS:
        raise ValueError(f"{ENV_VAR}={name!r} is not a segmenter; choose one of {', '.join(BACKENDS)}")
    return name


def segment_with(text: str, backend: str) -> list[str]:
    """Tokens of ``text`` (whitespace dropped) with the named backend."""
    if backend == "jieba":
        tokens = _jieba().lcut(text, HMM=False)
    elif backend == "rjieba":
        tokens = _rjieba().cut(text, False)
    else:
        raise ValueError(f"unknown segmenter {backend!r}; choose one of {', '.join(BACKENDS)}")
    return [t for t in tokens if not t.isspace()]


def segment(text: str) -> list[str]:
    """Tokens of one (normalised) review with the process's backend."""
    return segment_with(text, current_backend())
