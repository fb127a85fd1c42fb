"""Interrupted scoring: one line, exit 128+signal, no temporary output or staging left, the
previous good output intact (issue 14)."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from pipeline.paths import RAW


def _default_signals():
    """The scorer as started from a terminal: a test run launched in the background (``cmd &``
    in a script) inherits SIGINT ignored, and Python then installs no Ctrl-C handler at all —
    the scorer would rightly go on, as under nohup, and the test would measure its launcher."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@pytest.fixture(scope="module")
def big_input(tmp_path_factory):
    d = tmp_path_factory.mktemp("sig")
    texts = pd.read_csv(RAW / "online_shopping_neg.csv", usecols=["text"])["text"]
    pd.DataFrame({"评价内容": pd.concat([texts] * 12, ignore_index=True)}).to_csv(d / "in.csv", index=False)
    return d / "in.csv"


@pytest.mark.parametrize("signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_during_two_process_scoring(big_input, tiny_model_path, tmp_path, signum, status):
    out = tmp_path / "pred.csv"
    out.write_text("previous good output\n", encoding="utf-8")
    stage = tmp_path / "tmp"
    stage.mkdir()
    env = dict(os.environ, TMPDIR=str(stage))
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "score", str(big_input), "-o", str(out), "--model",
                             str(tiny_model_path), "--jobs", "2", "-q"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=_default_signals)
    deadline = time.time() + 120
    while time.time() < deadline and not any(stage.glob("*/*")):  # a scored chunk is staged: scoring is under way
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()[1]  # ~310k reviews: far from done after the first chunk
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("reviewcause: interrupted"), err[-2000:]
    assert out.read_text(encoding="utf-8") == "previous good output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.csv", "tmp"]  # no .pred.csv.*.tmp left
    assert list(stage.iterdir()) == []  # the staging folder is gone


def test_a_signal_whose_exception_was_lost_still_stops_the_run(tiny_model_path, tmp_path, monkeypatch):
    """A handler's exception raised inside a __del__ or weakref callback is printed and dropped by
    Python; the file loop checks the signals it received too, so such a run still ends as
    interrupted and keeps nothing — the previous output stays."""
    from pipeline import run
    from pipeline.predict import Predictor

    src = tmp_path / "in.csv"
    pd.DataFrame({"评价内容": ["快递太慢了", "质量很差"] * 50}).to_csv(src, index=False)
    out = tmp_path / "pred.csv"
    out.write_text("previous good output\n", encoding="utf-8")
    real = Predictor.score_chunk
    calls = []

    def score_and_lose_a_signal(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:  # the warm-up, then the file's first chunk: a SIGINT whose exception was lost
            run._RECEIVED.append(signal.SIGINT)
        return real(self, *a, **k)

    monkeypatch.setattr(Predictor, "score_chunk", score_and_lose_a_signal)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(run.Interrupted) as err:
        run.score_file(src, out, model_path=tiny_model_path, jobs=1, chunksize=20)
    assert err.value.status == 130
    assert out.read_text(encoding="utf-8") == "previous good output\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.csv", "pred.csv"]  # no temporary output left
    assert {s: signal.getsignal(s) for s in before} == before  # the handlers are put back
