import copy

import pytest

from fakes import SMALL_STUDY
from lorasum.errors import LorasumError
from lorasum.study import load_study_spec, parse_study_spec
from lorasum.study.cells import expand


def spec_with(**changes):
    d = copy.deepcopy(SMALL_STUDY)
    d.update(changes)
    return d


def test_small_study_parses(write_spec):
    spec = load_study_spec(write_spec())
    assert [s.label for s in spec.scenarios] == ["low_data", "zero_shot", "few_shot", "multi_source", "rank_ablation"]


def test_unknown_field_names_field_and_file(write_spec):
    path = write_spec(spec_with(axis={"rank": [4]}))
    with pytest.raises(LorasumError, match=r"study\.yaml: axis: unknown field"):
        load_study_spec(path)


def test_unknown_nested_scenario_field(write_spec):
    d = spec_with()
    d["scenarios"][0]["shot"] = [16]
    with pytest.raises(LorasumError, match=r"study\.yaml: scenarios\.0\.shot: unknown field"):
        load_study_spec(write_spec(d))


def test_bad_regime_is_named():
    with pytest.raises(LorasumError, match="regime must be one of"):
        parse_study_spec(spec_with(scenarios=[{"regime": "some_data", "languages": ["en"]}]), "s.yaml")


def test_bad_base_run_config_is_named():
    with pytest.raises(LorasumError, match=r"s\.yaml: base: training\.lr"):
        parse_study_spec(spec_with(base={"training": {"lr": -1}}), "s.yaml")


def test_unknown_language_is_named():
    d = spec_with()
    d["scenarios"][0]["languages"] = ["english", "klingon"]
    with pytest.raises(LorasumError, match=r"scenarios\.0\.languages: unknown language 'klingon'"):
        parse_study_spec(d, "s.yaml")


@pytest.mark.parametrize("src,tgt", [("zh-CN", "zh-TW"), ("sr-Latn", "sr-Cyrl")])
@pytest.mark.parametrize("regime", ["zero_shot", "multi_source"])
def test_leaking_pairs_refused(regime, src, tgt):
    sc = {"regime": regime, "source_langs": ["en", src], "target_langs": [tgt]}
    with pytest.raises(LorasumError, match="leaks"):
        parse_study_spec(spec_with(scenarios=[sc]), "s.yaml")
    sc["allow_leaking_pairs"] = True
    spec = parse_study_spec(spec_with(scenarios=[sc]), "s.yaml")
    assert len(expand(spec)) == 2


def test_target_must_be_held_out():
    sc = {"regime": "multi_source", "source_langs": ["en", "fr"], "target_langs": ["fr"]}
    with pytest.raises(LorasumError, match="held out"):
        parse_study_spec(spec_with(scenarios=[sc]), "s.yaml")


def test_few_shot_needs_zero_shot_parent():
    sc = [{"regime": "few_shot", "after": "nothing", "shots": [16]}]
    with pytest.raises(LorasumError, match="names no zero_shot scenario"):
        parse_study_spec(spec_with(scenarios=sc), "s.yaml")


def test_duplicate_scenario_names():
    sc = [{"regime": "low_data", "languages": ["en"], "shots": [16]}] * 2
    with pytest.raises(LorasumError, match="distinct `name`s"):
        parse_study_spec(spec_with(scenarios=sc), "s.yaml")


def test_bad_axes_override_is_named():
    d = spec_with()
    d["scenarios"][0]["axes"] = {"rank": [0]}
    with pytest.raises(LorasumError, match="scenario low_data: axes: rank"):
        parse_study_spec(d, "s.yaml")


@pytest.mark.parametrize("name", ["xlsum_mt5", "course_en_ru", "demo"])
def test_shipped_studies_parse(name):
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "studies" / f"{name}.yaml"
    cells = expand(load_study_spec(path), str(path))
    assert cells
