"""The ``lorasum`` command: parses arguments and calls library functions, nothing more.

Errors caused by the user's input (:class:`~lorasum.errors.LorasumError`) are printed as
one line on stderr with exit status 2, never as a traceback.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from pathlib import Path

from lorasum.errors import LorasumError


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*")
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except Exception:
        pass


def cmd_train(args) -> None:
    from lorasum.config import load_run_config
    from lorasum.run import train_and_evaluate

    cfg = load_run_config(args.config, args.overrides)
    if args.skip_bad_rows:
        cfg.data.skip_bad_rows = True
    out = Path(args.output or Path("runs") / Path(args.config).stem)
    metrics = train_and_evaluate(cfg, out, progress=not args.no_progress)
    from accelerate import PartialState

    if PartialState().is_main_process:  # under accelerate launch / torchrun every process gets here
        _print_summary(metrics["rouge"], out)


def _data_config(args):
    from lorasum.config import DataConfig

    fields = {"source": args.data, "languages": args.lang or ["en"], "skip_bad_rows": args.skip_bad_rows}
    if args.test_examples:
        fields["test_examples"] = args.test_examples
    for key in ("text_field", "summary_field", "lang_field", "id_field"):
        if getattr(args, key):
            fields[key] = getattr(args, key)
    try:
        return DataConfig(**fields)
    except Exception as err:
        from pydantic import ValidationError

        if isinstance(err, ValidationError):
            from lorasum.config import format_validation_error

            raise LorasumError(format_validation_error(err, "--data/--lang")) from None
        raise


def cmd_evaluate(args) -> None:
    from lorasum.evaluate import evaluate

    out = Path(args.output or (Path(args.model) / "evaluation" if Path(args.model).is_dir() else "runs/evaluation"))
    metrics = evaluate(args.model, _data_config(args), out, adapter=args.adapter, progress=not args.no_progress,
                       resamples=args.resamples)
    if args.against:
        from lorasum.metrics import score_files

        result = score_files(str(out / "predictions.jsonl"), str(out / "predictions.jsonl"), args.against,
                             resamples=args.resamples)
        metrics["paired_test"] = result["paired_test"]
        from lorasum.io import write_json

        write_json(out / "metrics.json", metrics)
        print(json.dumps({k: result["paired_test"][k] for k in ("overall", "pooled")}, indent=2))
    _print_summary(metrics["rouge"], out)


def cmd_summarize(args) -> None:
    from lorasum.evaluate import summarize

    raw = Path(args.input).read_text(encoding="utf-8") if args.input else sys.stdin.read()
    texts, ids = _articles(raw, args.input or "<stdin>", args.jsonl)
    summaries = summarize(args.model, texts, args.lang, adapter=args.adapter)
    for i, s in zip(ids, summaries):
        print(json.dumps({"id": i, "summary": s}, ensure_ascii=False) if ids[0] is not None or args.jsonl else s)


def _articles(raw: str, where: str, jsonl: bool) -> tuple[list[str], list]:
    """Plain text (one article) or JSONL (one {"text": ...} per line)."""
    if not jsonl and not raw.lstrip().startswith("{"):
        if not raw.strip():
            raise LorasumError(f"{where}: no article text given")
        return [raw.strip()], [None]
    texts, ids = [], []
    for n, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise LorasumError(f"{where}:{n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not str(row.get("text", "")).strip():
            raise LorasumError(f"{where}:{n}: each line needs a non-empty \"text\" field")
        texts.append(row["text"])
        ids.append(row.get("id", n))
    if not texts:
        raise LorasumError(f"{where}: no articles found")
    return texts, ids


def cmd_score(args) -> None:
    from lorasum.io import write_json
    from lorasum.metrics import score_files

    result = score_files(args.references, args.predictions, args.against, resamples=args.resamples, seed=args.seed)
    if args.output:
        write_json(args.output, result)
    print(json.dumps(result, indent=2, ensure_ascii=False))


def cmd_demo(args) -> None:
    from lorasum.demo import run_demo

    run_demo(args.output, epochs=args.epochs, progress=not args.no_progress)


def cmd_study_run(args) -> None:
    from lorasum.study import run_study

    summary = run_study(args.spec, out_dir=args.output, shard=args.shard, dry_run=args.dry_run, cells=args.cells,
                        rerun_changed=args.rerun_changed, progress=not args.no_progress,
                        runner_progress=args.run_progress, isolation=args.isolation, threads=args.threads)
    if not args.dry_run and summary.get("failed"):
        raise LorasumError(f"{len(summary['failed'])} cell(s) failed: {', '.join(summary['failed'][:5])} "
                           f"(see each cell's error in {summary['study_dir']}/study.json; run again to retry)")


def cmd_study_results(args) -> None:
    from lorasum.study import study_results

    table = study_results(args.study_dir)
    print(f"{len(table)} rows -> {Path(args.study_dir) / 'results.csv'} and results.parquet")


def cmd_study_report(args) -> None:
    from lorasum.study import study_report

    path = study_report(args.study_dir, resamples=args.resamples)
    print(f"report: {path}")


def _print_summary(rouge: dict, out: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="ROUGE F x100 (mean, 95% CI; macro avg = mean of the language means)")
    for col in ("language", "n", "ROUGE-1", "ROUGE-2", "ROUGE-L"):
        table.add_column(col)
    from lorasum.metrics import summary_rows

    for lang, m in summary_rows(rouge):
        table.add_row(lang, str(m["n"]), *(f"{m[k]['mean']:.2f} [{m[k]['mean_ci'][0]:.1f}, {m[k]['mean_ci'][1]:.1f}]"
                                           for k in ("rouge1", "rouge2", "rougeL")))
    Console().print(table)
    print(f"results in {out}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lorasum", description="LoRA vs full fine-tuning for multilingual summarization")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="one training run from a YAML config")
    t.add_argument("config", help="run YAML (model, data, method, training, generation)")
    t.add_argument("overrides", nargs="*", metavar="SECTION.FIELD=VALUE",
                   help="override config fields, e.g. training.lr=3e-4 method.r=16 (values are YAML)")
    t.add_argument("-o", "--output", help="run folder (default runs/<config name>)")
    t.add_argument("--skip-bad-rows", action="store_true", help="drop malformed data rows (with a count)")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=cmd_train)

    def data_args(sp):
        sp.add_argument("--data", required=True, help="csebuetnlp/xlsum, or a JSONL/CSV/Parquet file or folder")
        sp.add_argument("--lang", nargs="+", help="languages (XL-Sum codes or names)")
        sp.add_argument("--test-examples", type=int, help="per language, seeded random sample")
        for f in ("text-field", "summary-field", "lang-field", "id-field"):
            sp.add_argument(f"--{f}")
        sp.add_argument("--skip-bad-rows", action="store_true")

    e = sub.add_parser("evaluate", help="generate for a test split and score it")
    e.add_argument("model", help="run folder, model folder or hub id")
    e.add_argument("--adapter", help="LoRA adapter folder to apply to the model")
    data_args(e)
    e.add_argument("--against", help="another predictions.jsonl for a paired bootstrap test")
    e.add_argument("--resamples", type=int, default=1000)
    e.add_argument("-o", "--output")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("summarize", help="summarize articles from a file or stdin")
    s.add_argument("--model", required=True, help="run folder, model folder or hub id")
    s.add_argument("--adapter")
    s.add_argument("--lang", required=True)
    s.add_argument("--input", help="text file (one article) or JSONL ({\"text\": ...} per line); default stdin")
    s.add_argument("--jsonl", action="store_true", help="input is JSONL; print JSONL")
    s.set_defaults(func=cmd_summarize)

    sc = sub.add_parser("score", help="multilingual ROUGE of predictions against references")
    sc.add_argument("--references", required=True)
    sc.add_argument("--predictions", required=True)
    sc.add_argument("--against", help="a second system's predictions for a paired bootstrap test")
    sc.add_argument("--resamples", type=int, default=1000)
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("-o", "--output", help="write the result JSON here")
    sc.set_defaults(func=cmd_score)

    st = sub.add_parser("study", help="run, tabulate and report a study grid").add_subparsers(dest="study_cmd",
                                                                                           required=True)
    sr = st.add_parser("run", help="run the cells of a study spec (resumable; finished cells are skipped)")
    sr.add_argument("spec", help="study YAML (see studies/)")
    sr.add_argument("-o", "--output", help="study folder (default: the spec's output_dir)")
    sr.add_argument("--dry-run", action="store_true", help="print the expanded grid and estimated work only")
    sr.add_argument("--shard", help="i/n: run a deterministic share of the cells (1-based)")
    sr.add_argument("--cells", nargs="+", help="glob patterns on cell ids")
    sr.add_argument("--rerun-changed", action="store_true", help="rerun cells whose config changed (old moved aside)")
    sr.add_argument("--run-progress", action="store_true", help="show each run's own progress bars")
    sr.add_argument("--threads", type=int, help="torch threads per cell (default: $LORASUM_THREADS, "
                    "else 1 for the built-in tiny models, else torch's default)")
    sr.add_argument("--isolation", choices=["process", "none"], default="process",
                    help="run each cell in its own process (default) or all in this one (for debugging)")
    sr.add_argument("--no-progress", action="store_true")
    sr.set_defaults(func=cmd_study_run)
    rs = st.add_parser("results", help="tidy results table (CSV and Parquet), one row per cell and language")
    rs.add_argument("study_dir")
    rs.set_defaults(func=cmd_study_results)
    rp = st.add_parser("report", help="HTML report with figures, paired tests and sample summaries")
    rp.add_argument("study_dir")
    rp.add_argument("--resamples", type=int, default=1000)
    rp.set_defaults(func=cmd_study_report)

    d = sub.add_parser("demo", help="offline demo: tiny model, full vs LoRA, on the embedded sample")
    d.add_argument("-o", "--output", default="runs/demo")
    d.add_argument("--epochs", type=float, default=3)
    d.add_argument("--no-progress", action="store_true")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    _quiet_libraries()
    try:
        args.func(args)
    except LorasumError as err:
        print(f"lorasum: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lorasum: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
