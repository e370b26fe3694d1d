import copy

from fakes import SMALL_STUDY
from lorasum.study import parse_study_spec
from lorasum.study.cells import expand, select_shard, shard_index


def cells_of(d=None):
    return expand(parse_study_spec(d or copy.deepcopy(SMALL_STUDY), "s.yaml"))


def test_grid_size_and_ids():
    cells = cells_of()
    ids = [c.id for c in cells]
    # low_data 2 langs x 2 shots x 2 methods x 2 seeds; zero 2; multi 2; ranks 2; few-shot 2 targets x 2
    assert len(cells) == 16 + 2 + 2 + 2 + 4
    assert "low_data/en/lora-r8-attention/shots64/seed1" in ids
    assert "zero_shot/en-to-fr+ru/full/seed0" in ids
    assert "few_shot/en-to-ru/lora-r8-attention/shots16/seed0" in ids
    assert "rank_ablation/en/lora-r16-attention/shots64/seed0" in ids
    assert len(set(ids)) == len(ids)


def test_cells_resolve_to_run_configs():
    cells = {c.id: c for c in cells_of()}
    c = cells["low_data/fr/lora-r8-attention/shots16/seed1"]
    assert c.config.method.name == "lora" and c.config.method.r == 8
    assert c.config.data.languages == ["fr"] and c.config.data.train_examples == 16
    assert c.config.data.sample_seed == 1 and c.config.training.seed == 1
    assert c.config.training.lr == 1e-3
    full = cells["low_data/fr/full/shots16/seed1"].config
    assert full.method.name == "full" and full.training.optimizer == "adafactor"
    z = cells["zero_shot/en-to-fr+ru/full/seed0"].config
    assert z.data.languages == ["en"] and z.data.test_languages == ["fr", "ru"]
    few = cells["few_shot/en-to-fr/full/shots16/seed0"]
    assert few.parent == "zero_shot/en-to-fr+ru/full/seed0"
    assert few.config.data.languages == ["fr"] and few.config.data.train_examples == 16


def test_ids_and_hashes_stable_and_change_with_config():
    a = {c.id: c.config_hash for c in cells_of()}
    assert a == {c.id: c.config_hash for c in cells_of()}
    d = copy.deepcopy(SMALL_STUDY)
    d["per_method"]["lora"]["training"]["lr"] = 2e-3
    b = {c.id: c.config_hash for c in cells_of(d)}
    assert set(a) == set(b)
    changed = {i for i in a if a[i] != b[i]}
    assert changed == {i for i in a if "lora" in i}  # few-shot children change with their parents too


def test_alpha_per_rank():
    d = copy.deepcopy(SMALL_STUDY)
    d["axes"]["alpha_per_rank"] = 2
    cells = {c.id: c for c in cells_of(d)}
    assert cells["rank_ablation/en/lora-r16-attention/shots64/seed0"].config.method.alpha == 32


def test_shards_partition_and_keep_few_shot_with_parent():
    cells = cells_of()
    for n in (1, 2, 3, 5):
        parts = [select_shard(cells, f"{i}/{n}") for i in range(1, n + 1)]
        ids = [c.id for p in parts for c in p]
        assert sorted(ids) == sorted(c.id for c in cells)  # a partition
        where = shard_index(cells, n)
        for c in cells:
            if c.parent:
                assert where[c.id] == where[c.parent]
    # order within a shard keeps parents first
    for c_list in (select_shard(cells, "1/2"), select_shard(cells, "2/2")):
        seen = set()
        for c in c_list:
            assert c.parent is None or c.parent in seen
            seen.add(c.id)


def test_adding_a_scenario_moves_no_existing_cell_to_another_shard():
    before = cells_of()
    d = copy.deepcopy(SMALL_STUDY)
    d["scenarios"].insert(0, {"name": "added", "regime": "low_data", "languages": ["ru"], "shots": [8, 32],
                              "axes": {"seed": [0, 1, 2]}})
    after = cells_of(d)
    assert len(after) > len(before)
    for n in (2, 3, 4, 7):
        old, new = shard_index(before, n), shard_index(after, n)
        assert {cid: new[cid] for cid in old} == old
        parts = [select_shard(after, f"{i}/{n}") for i in range(1, n + 1)]
        ids = [c.id for p in parts for c in p]
        assert sorted(ids) == sorted(c.id for c in after)  # every cell in exactly one shard
        for c in after:
            if c.parent:
                assert new[c.id] == new[c.parent]


def test_shard_of_a_group_spreads_evenly():
    from lorasum.study.cells import group_shard

    counts = [0] * 4
    for k in range(2000):
        counts[group_shard(f"low_data/en/lora-r8-attention/shots{k}/seed0", 4) - 1] += 1
    assert all(400 < c < 600 for c in counts), counts
