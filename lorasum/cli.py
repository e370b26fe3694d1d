"""The ``lorasum`` command: parses arguments and calls library functions, nothing more.

Errors caused by the user's input (:class:`~lorasum.errors.LorasumError`) are printed as
one line on stderr with exit status 2, never as a traceback. SIGTERM / SIGINT stop a run
at a safe point with status 75 and the command that resumes it; the other statuses are
listed in :mod:`lorasum.faults`.
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
    if (out / "metrics.json").exists():
        print(f"{out} is a finished run: returning its stored results (a new -o trains again)", file=sys.stderr)
    metrics = train_and_evaluate(cfg, out, progress=not args.no_progress)
    from accelerate import PartialState

    if PartialState().is_main_process:  # under accelerate launch / torchrun every process gets here
        _print_summary(metrics["rouge"], out)


def _run_dir_config(model: str):
    """The resolved config of a run folder (its config.yaml), or None for a model folder / hub id."""
    from lorasum.config import load_run_config

    path = Path(model) / "config.yaml"
    return load_run_config(path) if path.is_file() else None


def _generation(args):
    """The run's or adapter's (else XL-Sum's) decoding settings with the command line's flags applied."""
    from lorasum.artifact import inference_settings
    from lorasum.config import GenerationConfig

    gen = inference_settings(args.model, args.adapter)[1]
    flags = {"num_beams": args.num_beams, "max_target_length": args.max_length,
             "length_penalty": args.length_penalty, "no_repeat_ngram_size": args.no_repeat_ngram_size,
             "backend": args.backend, "compute_type": args.compute_type}
    flags = {k: v for k, v in flags.items() if v is not None}
    if not flags:
        return gen
    from pydantic import ValidationError

    try:
        return GenerationConfig.model_validate({**gen.model_dump(), **flags})
    except ValidationError as err:
        from lorasum.config import format_validation_error

        raise LorasumError(format_validation_error(err, "generation flags").replace("\n", "; ")) from None


def _data_config(args, run_cfg=None):
    """The data section of ``evaluate``: ``--data`` and its flags, or the run folder's own data."""
    from pydantic import ValidationError

    from lorasum.config import DataConfig, format_validation_error

    if args.data is None:
        if run_cfg is None:
            raise LorasumError(f"--data is needed: {args.model} is not a run folder with a config.yaml")
        # the run's own source, fields and languages; --lang picks the languages to test
        base = run_cfg.data.model_dump()
        fields = {"skip_bad_rows": args.skip_bad_rows or run_cfg.data.skip_bad_rows}
        if args.lang:
            fields["test_languages"] = args.lang
        where = "--lang"
    else:
        base = {}
        fields = {"source": args.data, "languages": args.lang or ["en"], "skip_bad_rows": args.skip_bad_rows}
        where = "--data/--lang"
    if args.test_examples:
        fields["test_examples"] = args.test_examples
    for key in ("text_field", "summary_field", "lang_field", "id_field"):
        if getattr(args, key):
            fields[key] = getattr(args, key)
    try:
        return DataConfig.model_validate({**base, **fields})
    except ValidationError as err:
        raise LorasumError(format_validation_error(err, where)) from None


def cmd_evaluate(args) -> None:
    from lorasum.evaluate import evaluate

    from datetime import datetime, timezone

    run_cfg = _run_dir_config(args.model)
    data = _data_config(args, run_cfg)
    # each evaluation gets its own folder, so a second one never overwrites the first
    name = args.name or datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    base = Path(args.model) / "evaluations" if Path(args.model).is_dir() else Path("runs") / "evaluations"
    out = Path(args.output) if args.output else base / name
    if out.exists() and any(out.iterdir()) and not args.output:
        raise LorasumError(f"{out} already holds an evaluation; choose another --name")
    metrics = evaluate(args.model, data, out, adapter=args.adapter, progress=not args.no_progress,
                       resamples=args.resamples, generation=_generation(args), split=args.split,
                       faithfulness=_faithfulness_config(args))
    if args.against:
        from lorasum.metrics import score_files

        result = score_files(str(out / "predictions.jsonl"), str(out / "predictions.jsonl"), args.against,
                             resamples=args.resamples)
        metrics["paired_test"] = result["paired_test"]
        from lorasum.io import write_json

        write_json(out / "metrics.json", metrics)
        print(json.dumps({"difference": f"this model ({out / 'predictions.jsonl'}) minus {args.against}",
                          **{k: result["paired_test"][k] for k in ("overall", "pooled")}}, indent=2))
    _print_summary(metrics["rouge"], out)


def cmd_summarize(args) -> None:
    from lorasum.evaluate import summarize

    if args.input and not Path(args.input).is_file():
        raise LorasumError(f"--input file not found: {args.input}")
    try:
        raw = Path(args.input).read_text(encoding="utf-8") if args.input else sys.stdin.read()
    except UnicodeDecodeError:
        raise LorasumError(f"{args.input}: not UTF-8 text") from None
    texts, ids = _articles(raw, args.input or "<stdin>", args.jsonl)
    generation = _generation(args)
    summaries = summarize(args.model, texts, args.lang, adapter=args.adapter, generation=generation)
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

    result = score_files(args.references, args.predictions, args.against, articles=args.articles,
                         faithfulness=_faithfulness_config(args), per_item=args.per_item, resamples=args.resamples,
                         seed=args.seed, progress=sys.stderr.isatty(), lang=args.lang)
    if args.against:
        result["paired_test"]["difference"] = f"{args.predictions} minus {args.against}"
    if args.output:
        write_json(args.output, result)
        _print_summary(result["scores"], Path(args.output))
        if args.against:
            o = result["paired_test"]["overall"]
            print(f"paired test ({args.predictions} minus {args.against}): " + ", ".join(
                f"{k} {o[k]['diff']:+.2f} (p={o[k]['p_value']:.3g})" for k in ("rouge1", "rouge2", "rougeL") if k in o))
        return
    print(json.dumps(result, indent=2, ensure_ascii=False))


def _faithfulness_config(args):
    """A FaithfulnessConfig from ``--faithfulness`` and its options, or None."""
    if not args.faithfulness:
        return None
    from pydantic import ValidationError

    from lorasum.config import FaithfulnessConfig, format_validation_error

    fields = {"model": args.faithfulness, "revision": args.faithfulness_revision,
              "per_sentence": args.faithfulness_per_sentence, "cache": args.faithfulness_cache}
    if args.faithfulness_batch_size:
        fields["batch_size"] = args.faithfulness_batch_size
    try:
        return FaithfulnessConfig(**fields)
    except ValidationError as err:
        raise LorasumError(format_validation_error(err, "--faithfulness options")) from None


def faithfulness_args(sp) -> None:
    sp.add_argument("--faithfulness", metavar="MODEL", help="NLI model (classifier or seq2seq judge) for entailment")
    sp.add_argument("--faithfulness-revision", help="the NLI model's revision (hub commit, tag or branch)")
    sp.add_argument("--faithfulness-per-sentence", action="store_true",
                    help="score each summary sentence and average")
    sp.add_argument("--faithfulness-batch-size", type=int, help="pairs per NLI batch")
    sp.add_argument("--faithfulness-cache", help="SQLite cache of NLI scores (default ~/.cache/lorasum/nli.sqlite)")


def cmd_init(args) -> None:
    from lorasum.starter import write_starter_config

    path = write_starter_config(args.output, args.model, args.data, args.lang, args.method, force=args.force)
    print(f"wrote {path}; edit it, then: lorasum train {path}")


def cmd_push(args) -> None:
    from lorasum.push import push_run

    url = push_run(args.run_dir, args.repo, private=args.private)
    print(f"pushed {args.run_dir} to {url}")


def cmd_demo(args) -> None:
    from lorasum.demo import run_demo

    run_demo(args.output, epochs=args.epochs, progress=not args.no_progress)


def cmd_study_run(args) -> None:
    from lorasum.study import run_study

    summary = run_study(args.spec, out_dir=args.output, shard=args.shard, dry_run=args.dry_run, cells=args.cells,
                        rerun_changed=args.rerun_changed, progress=not args.no_progress,
                        runner_progress=args.run_progress, isolation=args.isolation, threads=args.threads,
                        overrides=args.overrides)
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


def _named_adapters(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, path = pair.partition("=")
        if not sep or not name or not path:
            raise LorasumError(f"--adapters: {pair!r} is not NAME=RUN_OR_ADAPTER (e.g. en=runs/lora-en)")
        out[name] = path
    return out


def cmd_compose(args) -> None:
    from lorasum.compose import compose, learn_weights

    adapters = _named_adapters(args.adapters)
    if args.learn_weights:
        if not args.examples:
            raise LorasumError("--learn-weights needs --examples FILE.jsonl (k target-language examples)")
        record = learn_weights(adapters, args.examples, args.out, k=args.k, budget=args.budget, seed=args.seed,
                               method=args.method, base=args.base)
        print(json.dumps({"weights": record["weights"], "evaluations": record["evaluations"]}))
    else:
        if not args.weights:
            raise LorasumError("--weights: give one weight per adapter, or --learn-weights")
        compose(adapters, args.weights, args.out, method=args.method, base=args.base, svd_rank=args.svd_rank,
                density=args.density, seed=args.seed)
    print(f"composed adapter: {args.out}")


def cmd_merge(args) -> None:
    from lorasum.merge import merge

    print(f"merged model: {merge(args.run, args.out, base=args.base)}")


def cmd_serve(args) -> None:
    from lorasum.serve.app import Limits, serve

    limits = Limits(max_batch_size=args.max_batch_size, wait_s=args.wait_ms / 1000, timeout_s=args.timeout)
    serve(args.base, args.adapters, host=args.host, port=args.port, limits=limits)


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


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lorasum")
    except PackageNotFoundError:
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lorasum", description="LoRA vs full fine-tuning for multilingual summarization")
    p.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    p.add_argument("--version", action="version", version=f"lorasum {_version()}")
    # -v is accepted after the subcommand too; SUPPRESS keeps a -v given before it
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log more detail")
    sub = p.add_subparsers(dest="command", required=True)

    def command(group, name, **kw):
        return group.add_parser(name, parents=[common], **kw)

    t = command(sub, "train", help="one training run from a YAML config")
    t.add_argument("config", help="run YAML (model, data, method, training, generation)")
    t.add_argument("overrides", nargs="*", metavar="SECTION.FIELD=VALUE",
                   help="override config fields, e.g. training.lr=3e-4 method.r=16 (values are YAML)")
    t.add_argument("-o", "--output", help="run folder (default runs/<config name>)")
    t.add_argument("--skip-bad-rows", action="store_true", help="drop malformed data rows (with a count)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    def data_args(sp):
        sp.add_argument("--data", help="csebuetnlp/xlsum, or a JSONL/CSV/Parquet file or folder "
                        "(default for a run folder: the run's own data source, fields and languages)")
        sp.add_argument("--lang", nargs="+", help="languages (XL-Sum codes or names)")
        sp.add_argument("--test-examples", type=int, help="per language, seeded random sample")
        for f in ("text-field", "summary-field", "lang-field", "id-field"):
            sp.add_argument(f"--{f}", help=f"name of the data's {f.split('-')[0]} column")
        sp.add_argument("--skip-bad-rows", action="store_true", help="drop malformed data rows (with a count)")

    def generation_args(sp):
        sp.add_argument("--num-beams", type=int, help="beam size (default: the run's, else XL-Sum's 4)")
        sp.add_argument("--max-length", type=int, help="most tokens per summary (default: the run's, else 84)")
        sp.add_argument("--length-penalty", type=float, help="beam length penalty (default: the run's, else 0.6)")
        sp.add_argument("--no-repeat-ngram-size", type=int,
                        help="never repeat an n-gram of this size (default: the run's, else 2)")
        sp.add_argument("--backend", choices=["transformers", "ctranslate2"],
                        help="decoding engine (default: the run's, else transformers); see docs/generation-backends.md")
        sp.add_argument("--compute-type", choices=["float32", "int8", "int8_float32", "float16", "bfloat16",
                                                   "int8_float16", "int8_bfloat16"],
                        help="ctranslate2 only: float32 (default); the others change the summaries")

    e = command(sub, "evaluate", help="generate for a test split and score it")
    e.add_argument("model", help="run folder, model folder or hub id")
    e.add_argument("--adapter", help="LoRA adapter folder to apply to the model")
    data_args(e)
    generation_args(e)
    e.add_argument("--split", default="test", choices=["train", "validation", "test"], help="split to evaluate")
    e.add_argument("--against", help="another predictions.jsonl for a paired bootstrap test (this model minus it)")
    faithfulness_args(e)
    e.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for CIs and tests")
    e.add_argument("--name", help="evaluation folder name under RUN/evaluations/ (default: a UTC timestamp)")
    e.add_argument("-o", "--output", help="write predictions and metrics to this folder instead")
    e.add_argument("--no-progress", action="store_true", help="no progress bar")
    e.set_defaults(func=cmd_evaluate)

    s = command(sub, "summarize", help="summarize articles from a file or stdin")
    s.add_argument("--model", required=True, help="run folder, model folder or hub id")
    s.add_argument("--adapter", help="LoRA adapter folder to apply to the model")
    s.add_argument("--lang", required=True, help="language of the articles (XL-Sum code or name)")
    s.add_argument("--input", help="text file (one article) or JSONL ({\"text\": ...} per line); default stdin")
    s.add_argument("--jsonl", action="store_true", help="input is JSONL; print JSONL")
    generation_args(s)
    s.set_defaults(func=cmd_summarize)

    sc = command(sub, "score", help="multilingual ROUGE of predictions against references")
    sc.add_argument("--references", required=True, help="JSONL with id, lang, summary (or a predictions.jsonl), "
                    "or a .txt file with one summary per line")
    sc.add_argument("--predictions", required=True, help="JSONL with id, lang, prediction, or a line-aligned .txt file")
    sc.add_argument("--lang", help="language of .txt inputs (XL-Sum code or name)")
    sc.add_argument("--against", help="a second system's predictions for a paired bootstrap test "
                    "(reported as --predictions minus --against)")
    sc.add_argument("--articles", help="JSONL with id, lang, text: adds faithfulness signals")
    faithfulness_args(sc)
    sc.add_argument("--per-item", help="write one JSON line per item (ROUGE P/R/F and faithfulness signals)")
    sc.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for CIs and tests")
    sc.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    sc.add_argument("-o", "--output", help="write the result JSON here and print a short table")
    sc.set_defaults(func=cmd_score)

    st = command(sub, "study", help="run, tabulate and report a study grid").add_subparsers(dest="study_cmd",
                                                                                           required=True)
    sr = command(st, "run", help="run the cells of a study spec (resumable; finished cells are skipped)")
    sr.add_argument("spec", help="study YAML (see studies/)")
    sr.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="override spec fields, e.g. base.training.lr=3e-4 axes.seed=[0,1,2] (values are YAML)")
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
    sr.add_argument("--no-progress", action="store_true", help="no progress bar")
    sr.set_defaults(func=cmd_study_run)
    rs = command(st, "results", help="tidy results table (CSV and Parquet), one row per cell and language")
    rs.add_argument("study_dir", help="the study folder")
    rs.set_defaults(func=cmd_study_results)
    rp = command(st, "report", help="HTML report with figures, paired tests and sample summaries")
    rp.add_argument("study_dir", help="the study folder")
    rp.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples for CIs and tests")
    rp.set_defaults(func=cmd_study_report)

    cp = command(sub, "compose", help="weighted sum of LoRA adapters (fixed or learnt weights) -> one adapter")
    cp.add_argument("--adapters", nargs="+", required=True, help="NAME=RUN_OR_ADAPTER, e.g. en=runs/lora-en")
    cp.add_argument("--weights", nargs="+", type=float, help="one weight per adapter")
    cp.add_argument("--method", default="cat", choices=["cat", "svd", "linear", "ties", "dare_ties"],
                    help="cat and svd are exact weighted sums; linear/ties/dare_ties are peft's, not exact")
    cp.add_argument("--svd-rank", type=int, help="rank of an svd composition (default: the largest input rank)")
    cp.add_argument("--density", type=float, help="ties/dare_ties: share of entries kept (default 0.5)")
    cp.add_argument("--base", help="base model the adapters must share (default: the first adapter's)")
    cp.add_argument("--learn-weights", action="store_true", help="search the weights on --examples (LoraHub)")
    cp.add_argument("--examples", help="JSONL of target-language {\"text\", \"summary\"} rows")
    cp.add_argument("--k", type=int, default=16, help="examples used by --learn-weights")
    cp.add_argument("--budget", type=int, default=40, help="loss evaluations of the weight search")
    cp.add_argument("--seed", type=int, default=0, help="seed of the weight search")
    cp.add_argument("--out", required=True, help="folder of the composed adapter")
    cp.set_defaults(func=cmd_compose)

    mg = command(sub, "merge", help="merge a LoRA run's adapter into its base: a standalone model folder")
    mg.add_argument("run", help="LoRA run folder or adapter folder")
    mg.add_argument("--base", help="base model of an adapter folder (default: its adapter_config.json's)")
    mg.add_argument("--out", required=True, help="folder of the merged model (safetensors + tokenizer)")
    mg.set_defaults(func=cmd_merge)

    sv = command(sub, "serve", help="HTTP API: one base model, per-language adapters, mixed-adapter batches")
    sv.add_argument("--base", required=True, help="base model folder or hub id the adapters were trained on")
    sv.add_argument("--adapters", required=True, help="folder of adapters (NAME/adapter_config.json or run folders)")
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    sv.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    sv.add_argument("--max-batch-size", type=int, default=16, help="texts per batch")
    sv.add_argument("--wait-ms", type=float, default=10, help="how long a batch waits for more requests")
    sv.add_argument("--timeout", type=float, default=120, help="seconds before a request gets 504")
    sv.set_defaults(func=cmd_serve)

    i = command(sub, "init", help="write a commented starting run config")
    i.add_argument("--model", default="google/mt5-small", help="base model: hub id or local folder")
    i.add_argument("--data", default="csebuetnlp/xlsum", help="csebuetnlp/xlsum, or a JSONL/CSV/Parquet file or folder")
    i.add_argument("--lang", nargs="+", default=["en"], help="training languages (XL-Sum codes or names)")
    i.add_argument("--method", default="lora", help="full or lora")
    i.add_argument("-o", "--output", default="run.yaml", help="file to write (default run.yaml)")
    i.add_argument("--force", action="store_true", help="overwrite an existing file")
    i.set_defaults(func=cmd_init)

    pu = command(sub, "push", help="upload a run's adapter or model folder with its card to the Hugging Face Hub")
    pu.add_argument("run_dir", help="a finished run folder")
    pu.add_argument("--repo", required=True, help="Hub repo id, e.g. user/mt5-small-xlsum-lora")
    pu.add_argument("--private", action="store_true", help="create the repo as private")
    pu.set_defaults(func=cmd_push)

    d = command(sub, "demo", help="offline demo: tiny model, full vs LoRA, on the embedded sample")
    d.add_argument("-o", "--output", default="runs/demo", help="demo folder (default runs/demo)")
    d.add_argument("--epochs", type=float, default=3, help="training epochs per method")
    d.add_argument("--no-progress", action="store_true", help="no progress bar")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    import shlex

    from lorasum import faults

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    _quiet_libraries()
    again = "lorasum " + shlex.join(argv)
    try:
        with faults.SignalGuard():
            args.func(args)
    except faults.NumericalFault as err:
        print(f"lorasum: error: {err}", file=sys.stderr)
        return faults.EXIT_DIVERGED
    except faults.WriteFailed as err:
        print(f"lorasum: error: {err}", file=sys.stderr)
        return faults.EXIT_WRITE_FAILED
    except LorasumError as err:
        print(f"lorasum: error: {_one_line(err)}", file=sys.stderr)
        return faults.EXIT_INPUT
    except OSError as err:  # a path the user gave, or a write the disk refused
        status, line = faults.describe_os_error(err)
        print(f"lorasum: error: {line}", file=sys.stderr)
        return status
    except faults.Preempted as err:
        print(f"lorasum: {err}; resume with: {again}", file=sys.stderr)
        return faults.EXIT_PREEMPTED
    except KeyboardInterrupt:
        print(f"lorasum: interrupted; run the same command again to resume: {again}", file=sys.stderr)
        return faults.EXIT_INTERRUPTED
    return 0


def _one_line(err: LorasumError) -> str:
    """Several problems (a config with many bad fields) are joined into one line."""
    return "; ".join(line.strip() for line in str(err).splitlines() if line.strip())


if __name__ == "__main__":
    sys.exit(main())
