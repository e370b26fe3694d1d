"""The training loop computes what its settings say: accumulation, language mixing, peak memory,
precision, schedule, weight decay, early stopping. Each test uses a tiny mT5 or BART and a few steps."""
import random
from collections import Counter

import pytest
import torch

from lorasum.config import TrainingConfig
from lorasum.data.features import LengthGroupedBatches
from lorasum.data.sampling import EpochMix, upsampling_weights
from lorasum.errors import LorasumError
from lorasum.models.load import load_base
from lorasum.train import (Trainer, build_optimizer, build_scheduler, make_accelerator, mixed_precision,
                           parameter_groups, peak_memory_mb, reset_peak_memory)


def _features(n: int, seed: int, langs=("en",), label_lengths=(2, 24)) -> list[dict]:
    """Synthetic seq2seq features over the tiny models' byte vocabulary, label lengths spread wide."""
    g = random.Random(seed)
    out = []
    for i in range(n):
        src = [g.randint(3, 258) for _ in range(g.randint(6, 30))] + [1]
        tgt = [g.randint(3, 258) for _ in range(g.randint(*label_lengths))] + [1]
        out.append({"id": str(i), "lang": langs[i % len(langs)], "input_ids": src, "labels": tgt})
    return out


@pytest.fixture(scope="module")
def no_dropout_mt5(tmp_path_factory):
    """A tiny mT5 without dropout: batches of different shapes must give the same gradients."""
    import json

    from lorasum.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path_factory.mktemp("models") / "mt5", "mt5", d_model=32, layers=1)
    config = json.loads((path / "config.json").read_text())
    config["dropout_rate"] = 0.0  # also read by the attention layers' functional dropout
    (path / "config.json").write_text(json.dumps(config))
    return path


def _model(path):
    model, _, _ = load_base(str(path))
    return model


def _cfg(**kw) -> TrainingConfig:
    base = dict(max_steps=1, batch_size=4, lr=1e-3, warmup_ratio=0.0, max_grad_norm=None, checkpoint_every=1000,
                seed=1, group_by_length=False)
    return TrainingConfig(**{**base, **kw})


def _trainer(model, feats, cfg, out, val=()):
    return Trainer(model, feats, list(val), cfg, out, pad_token_id=0, progress=False)


def _trainable(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


# -- gradient accumulation ----------------------------------------------------------------------

def test_accumulation_gives_the_gradients_of_one_big_batch(no_dropout_mt5, tmp_path):
    feats = _features(8, seed=0)
    # the examples of the first micro-batch get long summaries, those of the second short ones
    first, second = LengthGroupedBatches([1] * 8, 4, seed=1, group_by_length=False)
    for i in first:
        feats[i]["labels"] = list(range(3, 25)) + [1]
    for i in second:
        feats[i]["labels"] = [3, 4, 1]
    runs = {}
    for batch, accum in ((8, 1), (4, 2)):
        model = _model(no_dropout_mt5)
        trainer = _trainer(model, feats, _cfg(batch_size=batch, grad_accum=accum), tmp_path / f"b{batch}")
        grads = []
        trainer.optimizer.optimizer.register_step_pre_hook(
            lambda opt, args, kwargs: grads.append({n: p.grad.clone() for n, p in model.named_parameters()}))
        batches = list(trainer.sampler)
        trainer.train()
        runs[batch] = (batches, grads, _trainable(model))
    (one,), _, _ = runs[8]
    halves = runs[4][0]
    # the same 8 examples form the step, and the two micro-batches carry very different label counts
    assert sorted(one) == sorted(halves[0] + halves[1])
    n = [sum(len(feats[i]["labels"]) for i in half) for half in halves]
    assert n == [92, 12]
    g8, g4 = runs[8][1][0], runs[4][1][0]
    assert len(runs[4][1]) == 1, "two micro-batches make one optimizer step"
    for name in g8:
        assert torch.allclose(g4[name], g8[name], rtol=1e-4, atol=1e-7), name
    w8, w4 = runs[8][2], runs[4][2]
    assert all(torch.allclose(w4[k], w8[k], rtol=1e-5, atol=1e-6) for k in w8)


def test_accumulated_multilingual_run_resumes_bit_exactly(tiny_mt5, tmp_path, monkeypatch):
    # 12 en + 4 ru rows: epochs of 16 mixed rows, 8 micro-batches of 2; accumulation 3 makes
    # windows that span epochs, and the interruption after step 4 falls in the middle of epoch 1
    feats = _features(16, seed=1, langs=("en", "en", "en", "ru"))
    cfg = _cfg(batch_size=2, grad_accum=3, max_steps=6, checkpoint_every=4, group_by_length=True, lr=1e-2)

    def run(out):
        torch.manual_seed(0)
        model = _model(tiny_mt5)  # with dropout: the resumed run must replay its masks
        result = _trainer(model, feats, cfg, out).train()
        return result, _trainable(model)

    straight, w_straight = run(tmp_path / "straight")
    assert straight.steps == 6 and straight.epochs_done == pytest.approx(18 / 8)

    original = Trainer.save_checkpoint

    def crash_after_checkpoint(self):
        original(self)
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(Trainer, "save_checkpoint", crash_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "resumed")
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    assert (tmp_path / "resumed" / "checkpoints" / "step-0000004" / "state.json").exists()
    resumed, w_resumed = run(tmp_path / "resumed")
    assert all(torch.equal(w_straight[k], w_resumed[k]) for k in w_straight)
    assert [h for h in resumed.history] == [h for h in straight.history]


# -- multilingual mixing, per epoch ---------------------------------------------------------------

def test_languages_are_resampled_every_epoch_with_the_upsampled_shares():
    langs = ["en"] * 100 + ["ru"] * 10
    mix = EpochMix(langs, alpha=0.5, seed=3)
    w = upsampling_weights({"en": 100, "ru": 10}, 0.5)
    want = {"en": round(w["en"] * 110), "ru": round(w["ru"] * 110)}
    assert want == {"en": 84, "ru": 26} and len(mix) == 110
    epochs = [mix.indices(e) for e in range(8)]
    for rows in epochs:
        assert Counter(langs[i] for i in rows) == want
        en = [i for i in rows if langs[i] == "en"]
        assert len(set(en)) == len(en)  # a down-weighted language: a subsample without repeats
        ru = Counter(i for i in rows if langs[i] == "ru")
        assert set(ru) == set(range(100, 110)) and set(ru.values()) <= {2, 3}  # two whole passes + 6
    # the down-weighted language shows other rows in other epochs: all of them over 8 epochs
    seen = {i for rows in epochs for i in rows if langs[i] == "en"}
    assert len(set(epochs[0]) & set(range(100))) == 84 and seen == set(range(100))
    assert epochs[0] != epochs[1]
    again = EpochMix(langs, alpha=0.5, seed=3)
    assert [again.indices(e) for e in range(8)] == epochs  # same seed: same sequence
    assert EpochMix(langs, alpha=0.5, seed=4).indices(0) != epochs[0]


def test_mixed_sampler_batches_cover_the_epoch_sample_and_replay_by_epoch():
    langs = ["en"] * 100 + ["ru"] * 10
    lengths = [(i * 37) % 61 + 5 for i in range(110)]
    mix = EpochMix(langs, alpha=0.5, seed=3)
    sampler = LengthGroupedBatches(lengths, 8, seed=3, group=4, mix=mix)
    assert len(sampler) == 14
    sampler.set_epoch(2)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == mix.indices(2)
    fresh = LengthGroupedBatches(lengths, 8, seed=3, group=4, mix=EpochMix(langs, alpha=0.5, seed=3))
    fresh.set_epoch(2)  # what a resumed run rebuilds
    assert list(fresh) == batches


# -- peak memory -----------------------------------------------------------------------------------

def test_peak_memory_is_measured_per_run(tiny_mt5, tmp_path):
    kind = reset_peak_memory()
    if kind != "process_rss_hwm":
        pytest.skip("this system does not allow resetting the process memory high-water mark")
    big = torch.ones(300 * 2**20 // 4)  # 300 MiB, touched: an earlier, larger run in the same process
    first = peak_memory_mb(kind)
    del big
    model = _model(tiny_mt5)
    result = _trainer(model, _features(8, seed=0), _cfg(), tmp_path).train()
    assert result.peak_memory_kind == "process_rss_hwm"
    assert 0 < result.peak_memory_mb < first - 200, (result.peak_memory_mb, first)


def test_peak_memory_falls_back_to_the_process_lifetime_peak(monkeypatch):
    def no_clear_refs(*args, **kwargs):
        raise PermissionError("clear_refs")

    monkeypatch.setattr("lorasum.train.open", no_clear_refs, raising=False)
    kind = reset_peak_memory()
    assert kind == "process_rss_max" and peak_memory_mb(kind) > 0


# -- precision -------------------------------------------------------------------------------------

def test_fp16_means_fp16_on_a_gpu_and_is_refused_on_a_cpu():
    assert mixed_precision("fp16", cuda=True) == "fp16"
    assert mixed_precision("bf16", cuda=True) == "bf16" and mixed_precision("fp32", cuda=True) == "no"
    with pytest.raises(LorasumError, match=r"training\.precision: fp16 needs a CUDA GPU.*bf16 or fp32"):
        mixed_precision("fp16", cuda=False)
    if not torch.cuda.is_available():
        with pytest.raises(LorasumError, match=r"training\.precision"):
            make_accelerator(TrainingConfig(precision="fp16"))


def test_accelerators_with_different_precisions_in_one_process():
    assert make_accelerator(TrainingConfig(precision="bf16")).mixed_precision == "bf16"
    assert make_accelerator(TrainingConfig(precision="fp32")).mixed_precision == "no"
    assert make_accelerator(TrainingConfig(precision="bf16")).mixed_precision == "bf16"
    acc = make_accelerator(TrainingConfig(precision="fp32"))
    assert acc.mixed_precision == "no" and acc.dataloader_config.split_batches is True


# -- schedule and weight decay -----------------------------------------------------------------------

def test_constant_schedule_warms_up_when_asked():
    def lrs(warmup_ratio):
        opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
        sched = build_scheduler(opt, TrainingConfig(schedule="constant", warmup_ratio=warmup_ratio, lr=1.0), 10)
        out = []
        for _ in range(10):
            out.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        return out

    warm = lrs(0.4)  # 4 warmup steps
    assert warm[0] == 0.0 and warm[2] == pytest.approx(0.5) and warm[4:] == [1.0] * 6
    assert lrs(0.0) == [1.0] * 10


def test_weight_decay_skips_biases_and_norm_weights(tiny_bart, tiny_mt5):
    model = _model(tiny_bart)
    model.model.shared.weight.requires_grad_(False)
    names = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = ({names[id(p)] for p in g["params"]} for g in parameter_groups(model, 0.5))
    layer = "model.encoder.layers.0."
    assert layer + "self_attn.q_proj.weight" in decay and layer + "fc1.weight" in decay
    assert layer + "self_attn.q_proj.bias" in no_decay and layer + "self_attn_layer_norm.weight" in no_decay
    assert "model.shared.weight" not in decay | no_decay  # frozen parameters are not optimised
    assert decay | no_decay == {n for n, p in model.named_parameters() if p.requires_grad}
    t5 = _model(tiny_mt5)
    t5_names = {id(p): n for n, p in t5.named_parameters()}
    t5_no_decay = {t5_names[id(p)] for p in parameter_groups(t5, 0.5)[1]["params"]}
    assert "encoder.block.0.layer.0.layer_norm.weight" in t5_no_decay  # T5LayerNorm is an RMS norm
    assert "encoder.final_layer_norm.weight" in t5_no_decay and "encoder.block.0.layer.0.SelfAttention.q.weight" \
        not in t5_no_decay

    adafactor = build_optimizer(model, TrainingConfig(optimizer="adafactor", lr=0.1, weight_decay=0.5))
    assert [g["weight_decay"] for g in adafactor.param_groups] == [0.5, 0.0]
    opt = build_optimizer(model, TrainingConfig(lr=0.1, weight_decay=0.5))
    params = dict(model.named_parameters())
    bias, weight = params[layer + "self_attn.q_proj.bias"], params[layer + "self_attn.q_proj.weight"]
    with torch.no_grad():
        bias.fill_(0.5)  # biases start at zero, where decay would change nothing
    bias_before, weight_before = bias.detach().clone(), weight.detach().clone()
    for p in params.values():
        p.grad = torch.zeros_like(p) if p.requires_grad else None
    opt.step()
    assert torch.equal(bias, bias_before)
    assert torch.allclose(weight, weight_before * (1 - 0.1 * 0.5))


def test_adamw_is_fused_and_updates_as_the_per_tensor_loop(tiny_mt5):
    model = _model(tiny_mt5)
    cfg = TrainingConfig(lr=0.01, weight_decay=0.1)
    opt = build_optimizer(model, cfg)
    assert opt.defaults["fused"]
    reference = torch.optim.AdamW(parameter_groups(model, cfg.weight_decay), lr=cfg.lr, foreach=False)
    start = {n: p.detach().clone() for n, p in model.named_parameters()}
    g = torch.Generator().manual_seed(0)
    grads = [{n: torch.randn(p.shape, generator=g) for n, p in model.named_parameters()} for _ in range(3)]

    def run(optimizer):
        with torch.no_grad():
            for n, p in model.named_parameters():
                p.copy_(start[n])
        for step in grads:
            for n, p in model.named_parameters():
                p.grad = step[n].clone()
            optimizer.step()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    fused, plain = run(opt), run(reference)
    assert any(not torch.equal(fused[n], start[n]) for n in start)
    for n in start:
        assert torch.allclose(fused[n], plain[n], rtol=1e-5, atol=1e-7), n


# -- early stopping ----------------------------------------------------------------------------------

def test_early_stopping_restores_the_best_evaluated_weights(tiny_mt5, tmp_path):
    model = _model(tiny_mt5)
    # a huge learning rate after a zero-lr first step: the first evaluation is the best, later ones worse
    cfg = _cfg(lr=5.0, max_steps=12, eval_every=1, early_stopping_patience=2, warmup_ratio=0.1, batch_size=4)
    trainer = _trainer(model, _features(8, seed=0), cfg, tmp_path, val=_features(4, seed=9))
    evaluated = []
    measure = trainer.validation_loss

    def recording():
        loss = measure()
        evaluated.append((loss, _trainable(model)))
        return loss

    trainer.validation_loss = recording
    result = trainer.train()
    assert result.stopped_early and result.steps < 12
    losses = [loss for loss, _ in evaluated]
    best = losses.index(min(losses))
    assert best < len(losses) - 1 and result.best_validation_loss == min(losses)
    final = _trainable(model)
    assert all(torch.equal(final[k], evaluated[best][1][k]) for k in final)
    assert any(not torch.equal(final[k], evaluated[-1][1][k]) for k in final)


# -- gradient clipping --------------------------------------------------------------------------

def test_gradient_clip_reaches_the_trainable_parameters_of_a_lora_model(no_dropout_mt5, tmp_path):
    """A LoRA model (mostly frozen) trained one step with max_grad_norm 1e-9: its gradients are
    scaled to a norm far below AdamW's eps, so the step moves the adapter ~100x less than unclipped."""
    from peft import LoraConfig, TaskType, get_peft_model

    feats = _features(8, seed=3)
    moved = {}
    for clip in (None, 1e-9):
        torch.manual_seed(0)
        model = get_peft_model(_model(no_dropout_mt5), LoraConfig(
            r=4, lora_alpha=8, target_modules=["q", "v"], task_type=TaskType.SEQ_2_SEQ_LM, init_lora_weights=False))
        before = _trainable(model)
        trainer = _trainer(model, feats, _cfg(batch_size=8, max_grad_norm=clip), tmp_path / f"clip{clip}")
        trainer.train()
        after = _trainable(model)
        assert before and len(before) < len(list(model.parameters()))  # frozen parameters are there too
        moved[clip] = max((after[n] - before[n]).abs().max().item() for n in before)
    assert moved[None] > 5e-4
    assert moved[1e-9] < moved[None] / 20
