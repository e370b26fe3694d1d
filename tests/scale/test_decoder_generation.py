"""Decoder-only generation through a real tiny Llama: the training prompt, left padding, new tokens only,
and n-gram blocking that lets a summary copy its article."""
import pytest
import torch

from lorasum.config import GenerationConfig
from lorasum.data.causal import encode_causal
from lorasum.data.features import IGNORE_INDEX
from lorasum.evaluate import load_for_inference
from lorasum.generate import TensorNoRepeatNGram, generate_summaries

from .conftest import COPY_EXAMPLES, COPY_TEMPLATE

pytestmark = pytest.mark.slow  # trains a tiny model (once per session)

TEXTS = [ex["text"] for ex in COPY_EXAMPLES]
LANGS = [ex["lang"] for ex in COPY_EXAMPLES]
SUMMARIES = [ex["summary"] for ex in COPY_EXAMPLES]


@pytest.fixture(scope="module")
def copier(copying_llama):
    model, tok, fam = load_for_inference(str(copying_llama))
    assert fam == "decoder"
    return model, tok


def _summaries(model, tok, **gen):
    cfg = GenerationConfig(**{"max_source_length": 200, "max_target_length": 24, "batch_size": 3, **gen})
    return generate_summaries(model, tok, TEXTS, cfg, langs=LANGS, is_decoder_only=True,
                              prompt_template=COPY_TEMPLATE, progress=False)


@pytest.mark.parametrize("num_beams", [1, 2])
def test_no_repeat_ngram_lets_a_decoder_summary_copy_bigrams_of_its_article(copier, num_beams):
    model, tok = copier
    # each summary repeats bigrams of its article ("Le", "ee", ... of "Leeds"): blocking them would forbid copying
    for text, summary in zip(TEXTS, SUMMARIES):
        assert summary.split()[0] in text
    assert _summaries(model, tok, num_beams=num_beams, no_repeat_ngram_size=2) == SUMMARIES


def test_no_repeat_ngram_after_a_prompt_bans_only_repeats_within_the_generated_tokens():
    ids = torch.tensor([[5, 6, 7, 5, 8, 5]])  # prompt 5 6 7 | generated 5 8 5
    scores = TensorNoRepeatNGram(2, prompt_length=3)(ids, torch.zeros(1, 10))
    assert torch.isinf(scores[0]).nonzero().flatten().tolist() == [8]  # "5 8" again; "5 6" of the prompt is free
    scores = TensorNoRepeatNGram(2)(ids, torch.zeros(1, 10))
    assert torch.isinf(scores[0]).nonzero().flatten().tolist() == [6, 8]  # seq2seq: every decoder token counts


def test_decoder_generation_left_pads_the_training_prompt_and_returns_only_new_tokens(copier):
    model, tok = copier
    calls = []
    real_generate = model.generate

    def recording_generate(**kwargs):
        calls.append({k: kwargs[k].clone() for k in ("input_ids", "attention_mask")})
        return real_generate(**kwargs)

    model.generate = recording_generate
    try:
        out = _summaries(model, tok, num_beams=1, no_repeat_ngram_size=0)
    finally:
        del model.generate
    assert out == SUMMARIES  # what the model learnt: no prompt text, no padding, no EOS in the summaries
    assert len(calls) == 1 and calls[0]["input_ids"].shape[0] == 3  # the three articles in one padded batch
    ids, mask = calls[0]["input_ids"], calls[0]["attention_mask"]
    assert (mask[:, -1] == 1).all() and (mask[:, 0] == 0).any(), "decoder-only batches must be left-padded"
    training = encode_causal(COPY_EXAMPLES, tok, max_source_length=200, max_target_length=32,
                             prompt_template=COPY_TEMPLATE)
    training_prompts = [[t for t, lab in zip(f["input_ids"], f["labels"]) if lab == IGNORE_INDEX] for f in training]
    assert sorted(row[m.bool()].tolist() for row, m in zip(ids, mask)) == sorted(training_prompts)
