"""``reviewcause`` — a thin command line over the library.

Errors a user can cause (missing file, wrong column, bad model path, undecodable text …) print one
line ``reviewcause: error: …`` to stderr and exit with status 2; no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from contextlib import contextmanager
from pathlib import Path

from pipeline import __version__
from pipeline.paths import DEFAULT_MODEL, SAMPLE
from pipeline.tables import ROLES, InputError, check_output, one_line, session

EXIT_USER_ERROR = 2


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    def _get_help_string(self, action):
        """argparse's "(default: …)" only where the help does not say it already and there is one."""
        text = action.help or ""
        if "default" in text or action.default in (None, False, argparse.SUPPRESS) or action.default == []:
            return text
        return super()._get_help_string(action)


def _positive(value: str) -> int:
    """A whole number of at least 1 (``--jobs``)."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"{n}: give at least 1")
    return n


def _say(args, msg: str, lines: bool = False) -> None:
    """A summary on stderr (not with -q): one line with control characters shown escaped, or
    ``lines`` already made (a table, the score summary)."""
    if not getattr(args, "quiet", False):
        print(msg if lines else one_line(msg), file=sys.stderr)


def _parse_params(pairs: list[str]):
    """``--param KEY=VALUE`` → a Predictor with those ``set_params`` values (e.g.
    ``model__clf__C=4``, ``model__features__ngrams__vec__char_orders=2,3``, ``flag_at=0.9``)."""
    from pipeline.model import build_model
    from pipeline.predict import Predictor
    from pipeline.primary import PrimaryStack

    # the default parts spelled out, so their own parameters (stack__gate, stack__C …) are reachable
    predictor = Predictor(model=build_model(), stack=PrimaryStack())
    known = predictor.get_params(deep=True)
    params: dict[str, object] = {}
    for pair in pairs:
        if "=" not in pair:
            raise InputError(f"--param {pair!r}: expected KEY=VALUE")
        key, value = pair.split("=", 1)
        if key not in known:
            from pipeline.train import logged_params

            scalars = sorted(logged_params(predictor))
            raise InputError(f"--param {key}: unknown parameter; known: {', '.join(scalars)}")
        default = known[key]
        if key != "stack" and default is not None and not isinstance(default, (bool, int, float, str, tuple)):
            own = f"set its own parameters ({key}__…)" if hasattr(default, "get_params") else "--param cannot set it"
            raise InputError(f"--param {key}: is a part of the model ({type(default).__name__}), not a value; {own}")
        try:
            if key == "stack":  # the stacker itself: on (its parameters above) or off
                if value != "head":
                    raise InputError(f"--param stack={value!r}: only 'head' (the primary head decides alone); "
                                     f"set the stacker's own parameters with stack__C=…, stack__gate=…")
                params[key] = value
            elif isinstance(default, bool):
                params[key] = value.lower() in ("1", "true", "yes")
            elif isinstance(default, tuple):
                params[key] = tuple(int(x) for x in value.split(",") if x.strip())
            elif default is None:
                params[key] = None if value.lower() in ("", "none") else _number_or_text(value)
            else:
                params[key] = type(default)(value)
        except (ValueError, TypeError):
            raise InputError(f"--param {key}={value!r}: expected a {type(default).__name__}") from None
        if isinstance(default, bool) and value.lower() not in ("1", "true", "yes", "0", "false", "no"):
            raise InputError(f"--param {key}={value!r}: expected true or false")
    return predictor.set_params(**params).check_params()


def _number_or_text(value: str):
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value  # e.g. stack=head


def _overrides(args) -> dict[str, str | None]:
    """The columns named by ``--text-col`` … (None: found by header name)."""
    return {role: getattr(args, f"{role}_col", None) for role in ROLES}


def _role_options(p, what: str = "") -> None:
    for role in ROLES:
        p.add_argument(f"--{role}-col", help=f"column holding the {role}{what} (default: found by header name)")


def cmd_score(args) -> int:
    from pipeline.run import score_file
    from pipeline.segment import use_backend

    use_backend(args.segmenter)
    src = Path(args.input) if args.input else SAMPLE
    overrides = _overrides(args)
    if getattr(args, "master", None) and getattr(args, "engine", "local") != "spark":
        raise InputError(f"--master {args.master}: a Spark master is used only with --engine spark")
    if getattr(args, "engine", "local") == "spark":
        from pipeline import spark

        spark.check_output(args.output, {"input file": src, "model file": args.model})
        summary = spark.score_file_spark(
            src, args.output, model_path=args.model, encoding=args.encoding, overrides=overrides,
            bom=not args.no_bom, batch=not args.no_batch, master=args.master,
        )
    else:
        check_output(args.output, {"input file": src, "model file": args.model})
        summary = score_file(
            src, args.output, model_path=args.model, encoding=args.encoding, overrides=overrides,
            bom=not args.no_bom, jobs=args.jobs, progress=not args.quiet and sys.stderr.isatty(), batch=not args.no_batch,
        )
    roles = ", ".join(f"{k}={v}" for k, v in summary["roles"].items() if v)
    top = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items(), key=lambda kv: -kv[1]))
    # each line one line: names as the file holds them may hold line breaks or escape sequences
    _say(args, one_line(f"scored {summary['rows']} rows of {src} ({roles}) → {args.output}") + f"\n  primary causes: {top}\n"
               f"  suspected malicious: {summary['suspected']}", lines=True)
    return 0


def _labelled(args):
    import pandas as pd

    from pipeline.data import load_labelled, read_labelled_csv

    frames = [] if getattr(args, "no_shipped", False) else [load_labelled(authored=not args.no_authored)]
    frames += [read_labelled_csv(Path(p)) for p in getattr(args, "labels", [])]
    if not frames:
        raise InputError("nothing to train on: --no-shipped needs at least one --labels FILE")
    frame = pd.concat(frames, ignore_index=True)
    if "rating" not in frame:
        frame["rating"] = float("nan")
    for col in ("category", "stratum", "reading"):
        if col not in frame:
            frame[col] = ""
        frame[col] = frame[col].fillna("user")
    return frame


def _check_trainable(frame, folds: int, files: list[str]) -> None:
    """Refuse, before any work, labels a model cannot be cross-validated and fitted on."""
    where = ", ".join(map(str, files)) or "the labels"
    if folds < 2:
        raise InputError(f"--folds {folds}: cross-validation needs at least 2 folds")
    from pipeline.data import text_key

    evaluated = frame[frame["source"] != "authored"] if "source" in frame else frame
    if len(evaluated) < 2 * folds:
        raise InputError(f"{where}: {len(evaluated)} labelled review(s) are too few to cross-validate with {folds} folds; "
                         f"give at least {2 * folds} (or fewer --folds, at least 2)")
    # the folds keep each text's copies together (a repeated review never tests its own twin)
    distinct = evaluated["text"].map(text_key).nunique()
    if distinct < folds:
        raise InputError(f"{where}: the {len(evaluated)} labelled reviews hold only {distinct} distinct text(s) "
                         f"(after normalising); cross-validating with {folds} folds needs at least {folds} — "
                         f"give more different reviews (or fewer --folds, at least 2)")
    causes = sorted({c for labels in frame["labels"] for c in labels if c != "none"})
    if not causes:
        raise InputError(f"{where}: no review has a cause (every row is 'none'); a model needs at least two causes")
    if len(causes) < 2:
        raise InputError(f"{where}: every review has the same cause ({causes[0]}); a model needs at least two causes "
                         f"to tell apart (train with the shipped labels too: drop --no-shipped)")


def _print_figures(args, result) -> None:
    m = result["metrics"]
    _say(args, f"cross-validated primary accuracy {m['primary_accuracy']:.3f} (baseline {m.get('baseline_primary_accuracy', float('nan')):.3f}), "
               f"macro-F1 {m['macro_f1']:.3f} (baseline {m.get('baseline_macro_f1', float('nan')):.3f}), "
               f"script invariance {m.get('script_invariance', float('nan')):.4f}")
    _say(args, result["slices"].round(3).to_string(), lines=True)


@contextmanager
def _stoppable():
    """A long fit stopped by SIGTERM or Ctrl-C: the one line every interrupted command prints
    (130/143, :class:`pipeline.run.Interrupted`), and joblib's worker processes stopped with it —
    they lived on for loky's five idle minutes, holding the caller's output pipes open, and then
    printed "leaked semlock" warnings. The model file is written whole or not at all either way."""
    from pipeline.run import interruptible

    try:
        with interruptible():
            yield
    except BaseException:
        try:
            from joblib.externals.loky import reusable_executor

            executor = getattr(reusable_executor, "_executor", None)
            if executor is not None:
                executor.shutdown(wait=False, kill_workers=True)
        except Exception:  # noqa: BLE001 - best effort: the interrupt itself is what is reported
            pass
        raise


def cmd_train(args) -> int:
    from pipeline.tables import check_model_output
    from pipeline.train import run

    predictor = _parse_params(args.param)  # a parameter out of range: refused before any work
    check_model_output(args.model, [("labels file", p) for p in args.labels])
    frame = _labelled(args)
    _check_trainable(frame, args.folds, args.labels)
    with _stoppable(), _too_few_words(args.labels):
        result = run(predictor, frame=frame, model_path=Path(args.model), folds=args.folds,
                     promote=args.promote, label_files=[Path(p) for p in args.labels], log=lambda m: _say(args, m))
    _print_figures(args, result)
    alias = f" @{result['alias']}" if result.get("alias") else ""
    _say(args, f"model → {result['model_path']} (MLflow run {result['run_id']}, version {result['registered_version']}"
               f"{alias}: {result['promotion']})")
    return 0


@contextmanager
def _too_few_words(files: list[str]):
    """scikit-learn's "After pruning, no terms remain" (a training fold whose every word and
    character n-gram occurs in fewer reviews than the vocabulary's min_df) as one line naming the
    label files."""
    try:
        yield
    except ValueError as exc:
        if "no terms remain" not in str(exc):
            raise
        where = ", ".join(map(str, files)) or "the labels"
        raise InputError(f"{where}: too few reviews share any word for a vocabulary (each word and character n-gram "
                         f"must occur in at least 2 reviews of a training fold); give more labelled reviews") from None


def cmd_evaluate(args) -> int:
    if args.by_domain:
        from pipeline.train import run_domains

        domains = [d.strip() for d in args.domains.split(",") if d.strip()] if args.domains else None
        with _stoppable():
            table = run_domains(_parse_params(args.param), frame=_labelled(args), domains=domains, log=lambda m: _say(args, m))
        print(table.round(4).to_string())
        return 0
    if args.labelled is None:
        from pipeline.train import run

        predictor = _parse_params(args.param)
        with _stoppable(), _too_few_words(getattr(args, "labels", [])):
            result = run(predictor, frame=_labelled(args), model_path=None, folds=args.folds,
                         log=lambda m: _say(args, m))
        print(result["slices"].round(4).to_string())
        print(json.dumps({k: round(v, 4) for k, v in result["metrics"].items()}, indent=1))
        return 0
    from pipeline.data import indicator, read_labelled_csv
    from pipeline.evaluate import metrics, report
    from pipeline.persist import load_predictor, read_meta
    from pipeline.train import text_key

    frame = read_labelled_csv(Path(args.labelled))
    predictor = load_predictor(args.model).set_params(batch=False)
    cols = ["text"] + (["rating"] if "rating" in frame else [])
    s = predictor.score_chunk(frame[cols])
    Y = indicator(frame["labels"])
    print(report(Y, s.passed, frame["primary"].to_numpy(), s.primary))
    m = metrics(Y, s.passed, frame["primary"].to_numpy(), s.primary)
    print(json.dumps({k: round(v, 4) for k, v in m.items()}, indent=1))
    seen = set(read_meta(args.model).get("train_keys", []))
    overlap = int(frame["text"].map(text_key).isin(seen).sum())
    if overlap:
        _say(args, f"note: {overlap} of {len(frame)} reviews were in this model's training data; "
                   f"these figures are optimistic — use 'make eval' for cross-validated ones")
    return 0


def cmd_suspects(args) -> int:
    from pipeline.report import suspects

    check_output(args.output, {"predictions file": args.predictions})
    result = suspects(args.predictions, args.output, bom=not args.no_bom, overrides=_overrides(args))
    _say(args, f"{result['suspects']} suspected malicious reviews of {result['rows']} in {result['groups']} group(s) → {args.output}")
    return 0


def cmd_report(args) -> int:
    from pipeline.report import terminal_summary, write_report

    if args.output is None and args.png is None:
        print(terminal_summary(args.predictions, _overrides(args)))
        return 0
    result = write_report(args.predictions, args.output, png_dir=args.png, overrides=_overrides(args))
    if args.output is not None:
        _say(args, f"report of {result['rows']} reviews ({result['caused']} with a cause, {result['suspects']} suspected "
                   f"malicious, {result['charts']} charts) → {args.output}")
    if args.png is not None:
        _say(args, f"{len(result['png'])} chart(s) as PNG → {args.png}")
        if result.get("cjk_font") is False:
            print("reviewcause: warning: no Chinese font found (fc-list :lang=zh); Chinese labels in the PNGs may show "
                  "as boxes — install one, e.g. apt-get install fonts-noto-cjk", file=sys.stderr)
    return 0


def cmd_ensure_model(args) -> int:
    from pipeline.train import ensure_model

    state = ensure_model(Path(args.model), log=lambda m: _say(args, m))
    _say(args, f"model {args.model}: {state}")
    return 0


def cmd_serve(args) -> int:
    from pipeline.serving import serve

    return serve(Path(args.model), host=args.host, port=args.port, log=lambda m: _say(args, m),
                 timeout=getattr(args, "timeout", None))


def cmd_causes(args) -> int:
    from pipeline.taxonomy import CAUSES

    for c in CAUSES:
        flag = " [suspected malicious]" if c.malicious else ""
        print(f"{c.number} {c.id:20} {c.zh}  DSR: {c.dsr}  remedy: {c.remedy}{flag}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reviewcause",
        description="差评归因 — why does a Chinese online shop get its bad reviews?",
        epilog="example: reviewcause score reviews.csv -o predictions.csv",
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"reviewcause {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("score", help="score a CSV/Excel file of reviews", formatter_class=_Formatter,
                       epilog="example: reviewcause score 评价导出.csv -o predictions.csv --rating-col 评分")
    p.add_argument("input", nargs="?", help=f"CSV or .xlsx file (default: the shipped sample {SAMPLE.name})")
    p.add_argument("-o", "--output", default="predictions.csv",
                   help="output file: .csv (or .txt), .tsv, or .xlsx (a workbook with a summary sheet)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model file")
    p.add_argument("--encoding", help="input encoding (default: detected: UTF-8, UTF-8/UTF-16 with BOM, GB18030/GBK "
                                      "or Big5)")
    _role_options(p)
    p.add_argument("--no-bom", action="store_true", help="write UTF-8 without the BOM Excel needs")
    p.add_argument("--zh-headers", action="store_true", help="name the prediction columns in Chinese (原因, 置信度 …)")
    p.add_argument("--jobs", type=_positive, default=1, help="worker processes")
    p.add_argument("--engine", choices=("local", "spark"), default="local",
                   help="local: this process and --jobs workers; spark: PySpark (pip install '.[spark]' and a Java "
                        "runtime), same output; input may also be Parquet, output .parquet")
    p.add_argument("--master", help="Spark master with --engine spark (default: $SPARK_MASTER, else local[*])")
    p.add_argument("--segmenter", default=None, choices=("rjieba", "jieba"), help="segmentation backend (same tokens)")
    p.add_argument("--no-batch", action="store_true", help="skip the whole-batch signals (campaigns, serial buyers, bursts)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("suspects", help="appeal export: suspected malicious reviews grouped, strongest first",
                       formatter_class=_Formatter, epilog="example: reviewcause suspects predictions.csv -o suspects.csv")
    p.add_argument("predictions", help="a file written by 'reviewcause score' (.csv, .tsv or .xlsx)")
    p.add_argument("-o", "--output", default="suspects.csv", help="output file: .csv, .tsv or .xlsx")
    _role_options(p, " among the input columns score kept (give the ones you gave score)")
    p.add_argument("--no-bom", action="store_true", help="write UTF-8 without the BOM Excel needs")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_suspects)

    p = sub.add_parser("report", help="the seller's view: one offline HTML page with charts (-o), or a table of causes",
                       formatter_class=_Formatter,
                       description="Without -o: the causes with DSR dimension and remedy as a table on stdout. With -o: one "
                                   "self-contained HTML page (works offline) — cause mix, what to fix first per DSR "
                                   "dimension, causes per item, weekly trend, suspected-malicious groups, example reviews "
                                   "with the evidence highlighted.",
                       epilog="example: reviewcause report predictions.csv -o report.html --png charts/")
    p.add_argument("predictions", help="a file written by 'reviewcause score' (.csv, .tsv or .xlsx)")
    p.add_argument("-o", "--output", default=None, help="write the HTML report here (.html)")
    _role_options(p, " among the input columns score kept (give the ones you gave score)")
    p.add_argument("--png", metavar="DIR", default=None, help="also export each chart as a PNG into DIR (created if missing)")
    p.add_argument("-q", "--quiet", action="store_true", help="no summary line")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("train", help="cross-validate, fit and register the model (tracked in MLflow)", formatter_class=_Formatter,
                       epilog="example: reviewcause train --labels my_labels.csv --param model__clf__C=4")
    p.add_argument("--labels", action="append", default=[], help="extra labelled CSV (text,labels[,primary]); repeatable")
    p.add_argument("--no-shipped", action="store_true", help="train only on --labels files")
    p.add_argument("--no-authored", action="store_true", help="without the authored reviews (data/authored.jsonl, data/authored_categories.jsonl)")
    p.add_argument("--param", action="append", default=[], help="hyper-parameter KEY=VALUE; repeatable")
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="where to save the model")
    p.add_argument("--promote", action="store_true", help="make this version @champion even if it is worse than the champion")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="metrics: cross-validated (no file) or of the model on a labelled CSV",
                       formatter_class=_Formatter, epilog="example: reviewcause evaluate data/raw/labels_dev.csv")
    p.add_argument("labelled", nargs="?", help="CSV with a labels column (and text, or ids of the shipped corpus)")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model file (with a labelled CSV)")
    p.add_argument("--param", action="append", default=[], help="hyper-parameter KEY=VALUE (cross-validation)")
    p.add_argument("--no-authored", action="store_true", help="without the authored reviews (data/authored.jsonl, data/authored_categories.jsonl)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--by-domain", action="store_true",
                   help="leave one product category or platform out at a time: how the model and the baseline do on "
                        "a domain they never saw (a fit per domain; tens of minutes)")
    p.add_argument("--domains", help="with --by-domain: only these, comma-separated (e.g. 衣服,书籍,waimai,appliance)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("ensure-model", help="train the default model only if it is missing, unloadable or stale",
                       formatter_class=_Formatter, epilog="example: reviewcause ensure-model")
    p.add_argument("--model", default=str(DEFAULT_MODEL))
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_ensure_model)

    p = sub.add_parser("serve", help="serve the registered champion model over REST (MLflow scoring server)",
                       formatter_class=_Formatter,
                       epilog="example: reviewcause serve --port 5001 ; then POST {\"dataframe_split\": {\"columns\": [\"评价内容\", \"评分\"], "
                              "\"data\": [[\"物流太慢\", 1]]}} to http://127.0.0.1:5001/invocations")
    p.add_argument("--model", default=str(DEFAULT_MODEL), help="model file registered when the store has no champion yet")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5000)
    p.add_argument("--timeout", type=int, default=argparse.SUPPRESS, metavar="SECONDS",
                   help="seconds one request may take before its answer is a 504 (default: "
                        "$MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT if set, else 600; 20,000 reviews take about 5 s)")
    p.add_argument("-q", "--quiet", action="store_true")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("causes", help="list the eight causes, DSR dimensions and remedies",
                       epilog="example: reviewcause causes")
    p.set_defaults(func=cmd_causes)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # while the arguments were read
        print("reviewcause: interrupted; no output written", file=sys.stderr)
        return 130


def _main(argv: list[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "segmenter", None) is None and hasattr(args, "segmenter"):
        from pipeline.segment import current_backend

        args.segmenter = current_backend()
    try:
        with session(quiet=getattr(args, "quiet", False), zh_headers=getattr(args, "zh_headers", False)):
            return args.func(args)
    except InputError as exc:
        print(f"reviewcause: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except (ValueError, OSError) as exc:
        print(f"reviewcause: error: {one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("reviewcause: interrupted; no output written", file=sys.stderr)
        return 130
    except Exception as exc:  # Interrupted (SIGTERM/SIGINT during scoring) carries its status
        from pipeline.run import Interrupted

        if isinstance(exc, Interrupted):
            print(f"reviewcause: {one_line(exc)}", file=sys.stderr)
            return exc.status
        raise


if __name__ == "__main__":
    sys.exit(main())
