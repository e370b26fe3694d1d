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
    for lineno, line in _lines(path):
        if not line.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LorasumError(f"{where}: not valid JSON ({e.msg}, column {e.colno})") from None
        except RecursionError:
            raise LorasumError(f"{where}: JSON nested too deeply") from None
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
    if not rows:
        raise LorasumError(f"{path}: no rows (the file is empty or holds only blank lines)")
    return rows


def _lines(path: Path):
    """``(line number, text)`` per line, UTF-8 decoded one line at a time (a BOM is dropped)."""
    try:
        with open(path, "rb") as f:
            for lineno, raw in enumerate(f, 1):
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                try:
                    yield lineno, raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise LorasumError(f"{path}:{lineno}: not valid UTF-8 (byte 0x{raw[err.start]:02x} at column "
                                       f"{err.start + 1}); re-encode the file as UTF-8") from None
    except OSError as err:
        raise LorasumError(f"{path}: cannot read ({err.strerror or err})") from None


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

    Returns:
        ``{"references", "predictions", "n", "resamples", "seed", "scorer": scorer_info(),
        "scores": corpus_scores(...)}``, plus ``"against"``, ``"against_scores"`` and
        ``"paired_test"`` (see :func:`lorasum.metrics.paired_test`) when ``against`` is given.

    Raises:
        LorasumError: unreadable or malformed file (naming file and line), missing
            field, unmatched ids, or an unknown language.
    """
    refs = _read_jsonl(references, ("summary", "reference"))
    preds = _read_jsonl(predictions, ("prediction",))
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
        other = _read_jsonl(against, ("prediction",))
        _match(refs, other, references, against)
        items_b = score_items([other[k]["text"] for k in ids], ref_texts, langs, workers=workers)
        result["against"] = str(against)
        result["against_scores"] = corpus_scores(items_b, langs, resamples=resamples, seed=seed)
        result["paired_test"] = paired_test(items, items_b, langs, resamples=resamples, seed=seed)
    return result
