"""Score JSONL files: the library side of ``lorasum score``.

Reads references and one or two prediction files, matches rows by ``id``, scores them
with :func:`lorasum.metrics.score_items` and summarises with
:func:`lorasum.metrics.corpus_scores` (and :func:`lorasum.metrics.paired_test` when a
second system is given). Every input problem is a :class:`LorasumError` naming the file
and line.
"""
from __future__ import annotations

import json
from pathlib import Path

from lorasum.errors import LorasumError
from lorasum.languages import normalize_lang
from lorasum.metrics.rouge import score_items, scorer_info
from lorasum.metrics.stats import corpus_scores, paired_test


def _read_jsonl(path: str | Path, text_fields: tuple[str, ...]) -> dict[str, dict]:
    """``{id: {"lang", "text", "line"}}`` from a JSONL file, validating every row."""
    path = Path(path)
    if not path.is_file():
        raise LorasumError(f"{path}: file not found")
    rows: dict[str, dict] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            where = f"{path}:{lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise LorasumError(f"{where}: not valid JSON ({e.msg})") from None
            if not isinstance(row, dict):
                raise LorasumError(f"{where}: expected a JSON object, got {type(row).__name__}")
            for field in ("id", "lang"):
                if field not in row:
                    raise LorasumError(f"{where}: missing field {field!r}")
            field = next((k for k in text_fields if k in row), None)
            if field is None:
                raise LorasumError(f"{where}: missing field {' or '.join(map(repr, text_fields))}")
            if not isinstance(row[field], str):
                raise LorasumError(f"{where}: field {field!r} must be a string")
            key = str(row["id"])
            if key in rows:
                raise LorasumError(f"{where}: duplicate id {key!r} (first on line {rows[key]['line']})")
            rows[key] = {"lang": normalize_lang(row["lang"], where), "text": row[field], "line": lineno}
    return rows


def _read_lines(path: str | Path, lang: str | None) -> dict[str, dict]:
    """``{line number: {"lang", "text", "line"}}`` from a line-aligned text file (XL-Sum's
    convention: one summary per line, references and predictions on the same line numbers).
    An empty line is an empty summary, not a skipped one."""
    path = Path(path)
    if not path.is_file():
        raise LorasumError(f"{path}: file not found")
    if lang is None:
        raise LorasumError(f"{path}: a .txt file has no language column; give --lang")
    lang = normalize_lang(lang, "--lang")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise LorasumError(f"{path}: not UTF-8 text") from None
    lines = text.removesuffix("\n").split("\n") if text else []
    return {str(i): {"lang": lang, "text": line.removesuffix("\r"), "line": i} for i, line in enumerate(lines, 1)}


def _read(path: str | Path, text_fields: tuple[str, ...], lang: str | None) -> dict[str, dict]:
    if str(path).endswith(".txt"):
        return _read_lines(path, lang)
    return _read_jsonl(path, text_fields)


def _match(refs: dict, preds: dict, ref_path, pred_path) -> None:
    for key, row in preds.items():
        if key not in refs:
            raise LorasumError(f"{pred_path}:{row['line']}: id {key!r} is not in {ref_path}")
        if refs[key]["lang"] != row["lang"]:
            raise LorasumError(
                f"{pred_path}:{row['line']}: id {key!r} has lang {row['lang']!r} but "
                f"{ref_path}:{refs[key]['line']} says {refs[key]['lang']!r}"
            )
    missing = [k for k in refs if k not in preds]
    if missing:
        first = refs[missing[0]]["line"]
        raise LorasumError(
            f"{ref_path}:{first}: id {missing[0]!r} has no prediction in {pred_path} "
            f"({len(missing)} of {len(refs)} references unmatched)"
        )


def score_files(
    references: str,
    predictions: str,
    against: str | None = None,
    *,
    resamples: int = 1000,
    seed: int = 0,
    workers: int = 1,
    lang: str | None = None,
) -> dict:
    """Score a predictions JSONL file against references (``lorasum score``).

    Args:
        references: JSONL, one row per item with ``id``, ``lang`` and ``summary`` (or
            ``reference``); a run's ``predictions.jsonl`` works too.
        predictions: JSONL with ``id``, ``lang``, ``prediction`` (other fields, such as
            ``reference``, are ignored). Every reference id needs exactly one prediction.
        against: optional second predictions file (same ids) for a paired test: the
            difference reported is ``predictions`` minus ``against``.
        resamples: bootstrap resamples for CIs and the paired test.
        seed: bootstrap seed.
        workers: processes for per-item scoring.
        lang: the language of ``.txt`` inputs (line-aligned, one summary per line), which
            any of the files may be instead of JSONL.

    Returns:
        ``{"references", "predictions", "n", "resamples", "seed", "scorer": scorer_info(),
        "scores": corpus_scores(...)}``, plus ``"against"``, ``"against_scores"`` and
        ``"paired_test"`` (see :func:`lorasum.metrics.paired_test`) when ``against`` is given.

    Raises:
        LorasumError: unreadable or malformed file (naming file and line), missing
            field, unmatched ids, or an unknown language.
    """
    refs = _read(references, ("summary", "reference"), lang)
    preds = _read(predictions, ("prediction",), lang)
    _match(refs, preds, references, predictions)
    ids = list(preds)
    langs = [preds[k]["lang"] for k in ids]
    ref_texts = [refs[k]["text"] for k in ids]
    items = score_items([preds[k]["text"] for k in ids], ref_texts, langs, workers=workers)
    result = {
        "references": str(references),
        "predictions": str(predictions),
        "n": len(ids),
        "resamples": resamples,
        "seed": seed,
        "scorer": scorer_info(sorted(set(langs))),
        "scores": corpus_scores(items, langs, resamples=resamples, seed=seed),
    }
    if against is not None:
        other = _read(against, ("prediction",), lang)
        _match(refs, other, references, against)
        items_b = score_items([other[k]["text"] for k in ids], ref_texts, langs, workers=workers)
        result["against"] = str(against)
        result["against_scores"] = corpus_scores(items_b, langs, resamples=resamples, seed=seed)
        result["paired_test"] = paired_test(items, items_b, langs, resamples=resamples, seed=seed)
    return result
