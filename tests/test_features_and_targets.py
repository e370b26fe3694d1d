from lorasum.config import LoraMethod
from lorasum.data.features import IGNORE_INDEX, Collator, LengthGroupedBatches, labels_for_decoding
from lorasum.errors import LorasumError
from lorasum.models.load import load_base
from lorasum.methods.lora import apply_lora, resolve_targets


def test_collator_pads_labels_with_ignore_index():
    batch = Collator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [8, 1]}, {"input_ids": [5], "labels": [9, 9, 1]}])
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[8, 1, IGNORE_INDEX], [9, 9, 1]]
    assert labels_for_decoding(batch["labels"], 0).tolist() == [[8, 1, 0], [9, 9, 1]]
    left = Collator(pad_token_id=0, padding_side="left")([{"input_ids": [5, 6]}, {"input_ids": [7]}])
    assert left["input_ids"].tolist() == [[5, 6], [0, 7]]


def test_length_grouped_batches_cover_every_index_once_and_group_lengths():
    lengths = [(i * 37) % 101 for i in range(200)]
    s = LengthGroupedBatches(lengths, 8, seed=3, group=5)
    batches = list(s)
    assert sorted(i for b in batches for i in b) == list(range(200))
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 40  # random batches would spread over ~75
    assert list(s) == batches
    s.set_epoch(1)
    assert list(s) != batches


def test_lora_targets_t5_family(tiny_mt5):
    model, _, fam = load_base(str(tiny_mt5))
    assert fam == "t5"
    assert resolve_targets(model, fam, "attention") == ["q", "k", "v", "o"]
    assert resolve_targets(model, fam, "attention+ffn") == ["q", "k", "v", "o", "wi_0", "wi_1", "wo"]
    assert resolve_targets(model, fam, ["q", "v"]) == ["q", "v"]
    try:
        resolve_targets(model, fam, ["q_proj"])
    except LorasumError as err:
        assert "q_proj" in str(err) and "'wo'" in str(err)
    else:
        raise AssertionError("unknown module name accepted")
    peft_model = apply_lora(model, fam, LoraMethod(r=4, targets="attention+ffn"))
    wrapped = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, _ in peft_model.named_parameters() if "lora_A" in n}
    assert wrapped == {"q", "k", "v", "o", "wi_0", "wi_1", "wo"}


def test_lora_targets_bart_family(tiny_bart):
    model, _, fam = load_base(str(tiny_bart))
    assert fam == "bart"
    assert resolve_targets(model, fam, "attention") == ["q_proj", "k_proj", "v_proj", "out_proj"]
    assert resolve_targets(model, fam, "attention+ffn")[-2:] == ["fc1", "fc2"]
    peft_model = apply_lora(model, fam, LoraMethod(r=2, targets="attention"))
    names = [n for n, p in peft_model.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)
    assert any("out_proj.lora_A" in n for n in names) and not any("fc1" in n for n in names)


def test_fp16_refused_for_t5(tiny_mt5):
    try:
        load_base(str(tiny_mt5), precision="fp16")
    except LorasumError as err:
        assert "fp16" in str(err) and "bf16" in str(err)
    else:
        raise AssertionError("fp16 accepted for mT5")


def test_nonexistent_model_path_is_one_line_error(tmp_path):
    for name in (str(tmp_path / "missing-model"), "./no/such/model"):
        try:
            load_base(name)
        except LorasumError as err:
            assert "model path not found" in str(err) and "\n" not in str(err)
        else:
            raise AssertionError("missing model accepted")
