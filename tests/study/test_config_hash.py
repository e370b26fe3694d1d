"""A cell's hash follows what it computes: settings that cannot change results are left
out; the content of its data file and model folder, and its hub commit, are in."""
import copy
import json
import os

import pytest

from fakes import SMALL_STUDY
from lorasum.study import parse_study_spec
from lorasum.study.cells import expand
from lorasum.study.fingerprints import hub_commit


def hashes(d):
    return {c.id: c.config_hash for c in expand(parse_study_spec(d, "s.yaml"))}


@pytest.fixture
def spec(local_data, tiny_mt5, tmp_path):
    import shutil

    model = shutil.copytree(tiny_mt5, tmp_path / "model")
    d = copy.deepcopy(SMALL_STUDY)
    d["base"]["data"]["source"] = str(local_data)
    d["base"]["model"] = str(model)
    return d


@pytest.mark.parametrize("section, key, value", [
    ("training", "checkpoint_every", 7), ("training", "keep_checkpoints", 3), ("generation", "batch_size", 99),
    ("data", "skip_bad_rows", True),
])
def test_settings_that_cannot_change_results_leave_the_hash(spec, section, key, value):
    before = hashes(spec)
    spec["base"].setdefault(section, {})[key] = value
    assert hashes(spec) == before


def test_settings_that_change_results_change_every_hash(spec):
    before = hashes(spec)
    spec["base"]["training"]["max_source_length"] = 64
    after = hashes(spec)
    assert all(after[i] != before[i] for i in before)


def test_new_content_of_the_local_data_file_changes_the_hash(spec, local_data, lorasum_cache):
    before = hashes(spec)
    assert str(local_data.resolve()) in (lorasum_cache / "fingerprints.json").read_text()  # digests remembered
    rows = local_data.read_text().splitlines()
    row = json.loads(rows[0])
    row["summary"] = "S"  # same size, other bytes
    rows[0] = json.dumps(row)
    local_data.write_text("\n".join(rows) + "\n")
    st = os.stat(local_data)
    os.utime(local_data, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    after = hashes(spec)
    assert all(after[i] != before[i] for i in before)
    assert hashes(spec) == after  # and stable while the file stays the same


def test_new_weights_in_the_local_model_folder_change_the_hash(spec, tmp_path):
    before = hashes(spec)
    weights = tmp_path / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    after = hashes(spec)
    assert all(after[i] != before[i] for i in before)


def test_hub_models_hash_the_commit_their_revision_resolves_to(spec, tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    hub_commit.cache_clear()
    refs = tmp_path / "hub" / "models--google--mt5-small" / "refs"
    refs.mkdir(parents=True)
    spec["base"]["model"] = "google/mt5-small"
    (refs / "main").write_text("a" * 40)
    first = hashes(spec)
    assert hub_commit("google/mt5-small", None) == "a" * 40
    hub_commit.cache_clear()
    (refs / "main").write_text("b" * 40)  # main moved on
    assert all(hashes(spec)[i] != first[i] for i in first)
    hub_commit.cache_clear()
    spec["base"]["model"] = {"name": "google/mt5-small", "revision": "a" * 40}
    pinned = hashes(spec)
    assert pinned != first and hub_commit("google/mt5-small", "a" * 40) == "a" * 40
    hub_commit.cache_clear()
