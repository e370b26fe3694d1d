"""Language pairs (de->en) in study scenarios: cells, configs and the results table."""
from __future__ import annotations

import pytest
from fakes import fake_train_and_evaluate

from lorasum.errors import LorasumError
from lorasum.study import run_study, study_results
from lorasum.study.cells import expand
from lorasum.study.spec import load_study_spec, parse_study_spec


def _spec(scenarios, source):
    return {"name": "pairs", "base": {"model": "m", "data": {"source": str(source), "languages": ["de"]}},
            "axes": {"method": ["full"], "seed": [0]}, "scenarios": scenarios}


def test_pairs_set_article_and_summary_languages(tmp_path):
    spec = parse_study_spec(_spec([
        {"regime": "full_data", "languages": ["de->en", "fr->EN", "en"]},
        {"regime": "zero_shot", "source_langs": ["de->en"], "target_langs": ["fr->en", "cs->en"]},
    ], tmp_path))
    cells = {c.id: c for c in expand(spec)}
    de = cells["full_data/de2en/full/seed0"]
    assert de.config.data.languages == ["de"] and de.config.data.summary_lang == "en"
    assert de.train_langs == ("de",) and de.axes()["summary_lang"] == "en"
    assert cells["full_data/fr2en/full/seed0"].config.data.summary_lang == "en"
    assert cells["full_data/en/full/seed0"].config.data.summary_lang is None
    zs = cells["zero_shot/de2en-to-fr2en+cs2en/full/seed0"]
    assert zs.config.data.test_languages == ["fr", "cs"] and zs.config.data.summary_lang == "en"


def test_bad_pairs_are_clear_errors(tmp_path):
    with pytest.raises(LorasumError, match="scenarios.0.languages: 'de->en->fr': a language pair is written"):
        parse_study_spec(_spec([{"regime": "full_data", "languages": ["de->en->fr"]}], tmp_path), "s.yaml")
    spec = parse_study_spec(_spec([{"regime": "zero_shot", "source_langs": ["de->en"], "target_langs": ["fr->de"]}],
                                  tmp_path))
    with pytest.raises(LorasumError, match="summaries in de, en; one cell trains and tests one summary language"):
        expand(spec)


def test_results_carry_source_and_target_language(tmp_path, write_spec):
    spec = write_spec(_spec([{"regime": "full_data", "languages": ["de->en", "fr"]}], tmp_path))
    run_study(spec, out_dir=tmp_path / "s", runner=fake_train_and_evaluate, progress=False)
    df = study_results(tmp_path / "s", write=False)
    rows = df[df["level"] == "language"].set_index("cell_id")
    assert rows.loc["full_data/de2en/full/seed0", ["source_lang", "target_lang"]].tolist() == ["de", "en"]
    assert rows.loc["full_data/fr/full/seed0", ["source_lang", "target_lang"]].tolist() == ["fr", "fr"]


def test_xwikis_study_expands():
    from pathlib import Path

    spec = load_study_spec(Path(__file__).resolve().parents[2] / "studies" / "xwikis_mt5.yaml")
    cells = expand(spec)
    assert {c.config.data.summary_lang for c in cells} == {"en"}
    assert {c.train_langs for c in cells if c.regime == "full_data"} == {("de",), ("fr",), ("cs",), ("zh",)}
    assert all(c.config.data.source == "GEM/xwikis" for c in cells)


def test_report_table_shows_source_and_target_language(tmp_path, write_spec):
    from lorasum.report.build import results_by_language

    spec = write_spec(_spec([{"regime": "full_data", "languages": ["de->en", "fr"]}], tmp_path))
    run_study(spec, out_dir=tmp_path / "s", runner=fake_train_and_evaluate, progress=False)
    table = results_by_language(study_results(tmp_path / "s", write=False))
    pairs = sorted(zip(table["lang"], table["target"]))
    assert pairs == [("de", "en"), ("fr", "fr")]
