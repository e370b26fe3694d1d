"""Score JSONL files: the library side of ``lorasum score``.

Reads references and one or two prediction files, matches rows by ``id``, scores them
with :func:`lorasum.metrics.score_items` and summarises with
:func:`lorasum.metrics.corpus_scores` (and :func:`lorasum.metrics.paired_test` when a
second system is given). Given the articles, it adds the faithfulness signals of
:mod:`lorasum.metrics.faithfulness` (NLI entailment when a model is named). Every input
problem is a :class:`LorasumError` naming the file and line.
"""
from __future__ import annotations

import json
from pathlib import Path

from lorasum.errors import LorasumError
from lorasum.io import write_jsonl
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
    articles: str | None = None,
    faithfulness=None,
    per_item: str | None = None,
    resamples: int = 1000,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
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
        articles: optional JSONL with ``id``, ``lang``, ``text`` for every reference id;
            adds the model-free faithfulness signals.
        faithfulness: optional :class:`lorasum.config.FaithfulnessConfig`: NLI entailment
            with that model (needs ``articles``).
        per_item: optional JSONL path: one line per item with ``id``, ``lang``, ROUGE
            precision/recall/F (x100) and every faithfulness signal of ``predictions``.
        resamples: bootstrap resamples for CIs and the paired test.
        seed: bootstrap seed.
        workers: processes for per-item scoring.
        progress: show the NLI progress bar.
        lang: the language of ``.txt`` inputs (line-aligned, one summary per line), which
            any of the files may be instead of JSONL.

    Returns:
        ``{"references", "predictions", "n", "resamples", "seed", "scorer": scorer_info(),
        "scores": corpus_scores(...)}``, plus ``"against"``, ``"against_scores"`` and
        ``"paired_test"`` (see :func:`lorasum.metrics.paired_test`) when ``against`` is given;
        with ``articles`` also ``"faithfulness"`` (and ``"against_faithfulness"``,
        ``"faithfulness_paired_test"``), and ``scorer["faithfulness"]``.

    Raises:
        LorasumError: unreadable or malformed file (naming file and line), missing
            field, unmatched ids, an unknown language, or an NLI model without articles.
    """
    if faithfulness is not None and articles is None:
        raise LorasumError("NLI faithfulness needs the articles: give --articles (JSONL with id, lang, text)")
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
    faith = None
    if articles is not None:
        from lorasum.metrics.faithfulness import (faithfulness_info, faithfulness_items, faithfulness_scores,
                                                  load_scorer, open_cache)

        arts = _read_jsonl(articles, ("text",))
        _match_articles(refs, arts, references, articles)
        art_texts = [arts[k]["text"] for k in ids]
        nli = load_scorer(faithfulness)
        cache = open_cache(faithfulness)

        def faith_of(rows: dict) -> list[dict]:
            return faithfulness_items(art_texts, [rows[k]["text"] for k in ids], langs, scorer=nli, cache=cache,
                                      progress=progress)

        faith = faith_of(preds)
        result["faithfulness"] = faithfulness_scores(faith, langs, resamples=resamples, seed=seed)
        result["scorer"]["faithfulness"] = faithfulness_info(nli)
    if against is not None:
        other = _read(against, ("prediction",), lang)
        _match(refs, other, references, against)
        items_b = score_items([other[k]["text"] for k in ids], ref_texts, langs, workers=workers)
        result["against"] = str(against)
        result["against_scores"] = corpus_scores(items_b, langs, resamples=resamples, seed=seed)
        result["paired_test"] = paired_test(items, items_b, langs, resamples=resamples, seed=seed)
        if faith is not None:
            from lorasum.metrics.faithfulness import faithfulness_paired_test

            faith_b = faith_of(other)
            result["against_faithfulness"] = faithfulness_scores(faith_b, langs, resamples=resamples, seed=seed)
            result["faithfulness_paired_test"] = faithfulness_paired_test(faith, faith_b, langs,
                                                                          resamples=resamples, seed=seed)
    if per_item is not None:
        write_jsonl(per_item, (per_item_row(k, lang, it, fa) for k, lang, it, fa in
                               zip(ids, langs, items, faith or [None] * len(ids))))
    return result


def per_item_row(item_id: str, lang: str, rouge: dict, faith: dict | None) -> dict:
    """One ``--per-item`` line: ``rouge1_precision`` ... ``rougeL_f`` (x100) and the faithfulness signals."""
    row: dict = {"id": item_id, "lang": lang}
    for metric, scores in rouge.items():
        for short, name in (("p", "precision"), ("r", "recall"), ("f", "f")):
            row[f"{metric}_{name}"] = round(scores[short] * 100, 4)
    for key, value in (faith or {}).items():
        row[key] = round(value, 6) if isinstance(value, float) else value
    return row


def _match_articles(refs: dict, arts: dict, ref_path, art_path) -> None:
    for key, row in refs.items():
        art = arts.get(key)
        if art is None:
            raise LorasumError(f"{ref_path}:{row['line']}: id {key!r} has no article in {art_path}")
        if art["lang"] != row["lang"]:
            raise LorasumError(f"{art_path}:{art['line']}: id {key!r} has lang {art['lang']!r} but "
                               f"{ref_path}:{row['line']} says {row['lang']!r}")
