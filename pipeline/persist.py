"""Saving and loading the fitted Predictor — without running code from a foreign file.

A joblib/pickle file runs code when it is loaded, so a model file is loaded only when it is
one this project wrote: ``save`` records the file's SHA-256 in the JSON sidecar beside it
(``reviewcause.joblib`` → ``reviewcause.json``, with the training metadata), and ``load_predictor``
checks the sidecar and the hash *before* unpickling. A file with no sidecar, another format, or
a different hash is refused in one line. (Someone who can write both files can still plant a
model: keep ``models/`` as private as the code itself.)

joblib unpickles through Python's pure-Python unpickler: ~1.2 s for the shipped model, against
~0.1 s for the C unpickler. So the first load also writes a plain pickle of the same object to
the cache folder (``.cache/models/<sha256 of the model file>.pkl``, with the model file's, the
code's and the pickle's SHA-256 beside it); later loads of the same model file by the same code
check the three hashes and read that copy. The copy is written after a warm-up
(:meth:`~pipeline.predict.Predictor.warm_up`) and holds the fast paths' tables built for the
model (n-gram keys, evidence surfaces, cue prefixes: ~0.5 s to build, what every scoring run
paid before its first row), which is why it is bound to the code that built them too.
A cache that cannot be written, or does not match its hashes, is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from functools import lru_cache
from pathlib import Path

import joblib

from pipeline.tables import InputError, _write_error, atomic_file

FORMAT = "reviewcause-predictor/2"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sidecar(path: Path | str) -> Path:
    return Path(path).with_suffix(".json")


def save(predictor, path: Path | str, meta: dict) -> Path:
    """Write the model atomically (temp file + rename) and its sidecar with the hash."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"{path}: cannot create its folder ({exc.strerror or exc})") from None
    side = sidecar(path)
    # temporary names of our own (mkstemp: created new, never an existing file — a labels file
    # named `<model>.tmp` was once dumped over); the model is renamed into place, then its sidecar
    with atomic_file(side) as side_tmp, atomic_file(path) as tmp:
        try:
            joblib.dump(predictor, tmp, compress=3)
            side_tmp.write_text(json.dumps({"format": FORMAT, "sha256": sha256(tmp), **meta}, ensure_ascii=False,
                                           indent=2, default=str), encoding="utf-8")
        except OSError as exc:
            raise _write_error(path, exc) from None
    return path


def read_meta(path: Path | str) -> dict:
    side = sidecar(path)
    try:
        return json.loads(side.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def load_predictor(path: Path | str):
    """The fitted Predictor saved at ``path``; InputError (one line) for anything else."""
    from pipeline.predict import Predictor

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no model file there; train one with 'make train' or pass --model")
    if path.is_dir():
        raise InputError(f"{path}: is a directory, not a model file")
    meta = read_meta(path)
    if meta.get("format") != FORMAT or "sha256" not in meta:
        raise InputError(f"{path}: not a reviewcause model (no {sidecar(path).name} written by 'reviewcause train' beside it); "
                         f"refusing to unpickle it")
    if sha256(path) != meta["sha256"]:
        raise InputError(f"{path}: the file does not match the hash recorded in {sidecar(path).name} at training; "
                         f"refusing to unpickle it")
    model = _cached(meta["sha256"])
    if model is None:
        try:
            model = joblib.load(path)
        except Exception as exc:  # a damaged file with a matching hash cannot happen; a library mismatch can
            raise InputError(f"{path}: cannot load this model ({type(exc).__name__}: {exc}); retrain with 'make train'") from None
        if isinstance(model, Predictor) and hasattr(model, "model_"):
            model.warm_up()
            _cache(meta["sha256"], (model, model.warm_tables()))
    elif isinstance(model, tuple) and len(model) == 2 and isinstance(model[0], Predictor):
        model, tables = model
        model.adopt_tables(tables)
    if not isinstance(model, Predictor) or not hasattr(model, "model_"):
        raise InputError(f"{path}: not a fitted reviewcause Predictor")
    return model


@lru_cache(maxsize=None)
def code_digest() -> str:
    """SHA-256 of the package's own source files: a fast-load copy holds tables this code built."""
    h = hashlib.sha256()
    for f in sorted(Path(__file__).resolve().parent.glob("*.py")):
        h.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def _cache_paths(digest: str) -> tuple[Path, Path]:
    from pipeline.segment import _cache_dir

    folder = _cache_dir() / "models"
    return folder / f"{digest}.pkl", folder / f"{digest}.pkl.sha256"


def _private(path: Path) -> bool:
    """Only this user can have written it (a cache in a shared temp folder could be planted)."""
    st = path.stat()
    return (not hasattr(os, "getuid") or st.st_uid == os.getuid()) and not st.st_mode & 0o022


def _cached(digest: str):
    """The plain-pickle copy of the model file whose hash is ``digest`` made by this code, if a
    valid one exists: ``(predictor, its tables)``."""
    try:
        pkl, mark = _cache_paths(digest)
        if not pkl.exists() or not all(map(_private, (pkl.parent, pkl, mark))):
            return None
        # the mark binds the copy to the model file and the code it was made from, not only to its own bytes
        if f"{digest} {code_digest()} {sha256(pkl)}" != mark.read_text(encoding="ascii").strip():
            return None
        with open(pkl, "rb") as fh:
            model = pickle.load(fh)
        os.utime(pkl)  # recently used: kept when older copies are pruned
        return model
    except Exception:  # no cache, a stale one, another library version: the model file decides
        return None


#: how many plain-pickle copies the cache keeps (the most recently used; a retrained model's
#: copy replaces the oldest)
CACHE_KEEP = 3


def _prune(folder: Path, keep: int = CACHE_KEEP) -> None:
    copies = sorted(folder.glob("*.pkl"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in copies[keep:]:
        for path in (old, old.with_name(old.name + ".sha256")):
            try:
                path.unlink()
            except OSError:
                pass


def _cache(digest: str, model) -> None:
    try:
        pkl, mark = _cache_paths(digest)
        pkl.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        tmp = pkl.with_name(f"{pkl.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
        os.chmod(tmp, 0o644)
        mark.write_text(f"{digest} {code_digest()} {sha256(tmp)}", encoding="ascii")
        os.chmod(mark, 0o644)
        os.replace(tmp, pkl)
        _prune(pkl.parent)
    except Exception:  # a read-only checkout: load from the model file every time
        try:
            tmp.unlink()
        except Exception:
            pass
