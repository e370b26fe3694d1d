"""Decoder-only features (prompt, article truncation, label mask, EOS) and generation order under sharding."""
import pytest
import torch
from transformers import ByT5Tokenizer, PretrainedConfig
from transformers import GenerationConfig as TransformersGenerationConfig

from lorasum.config import GenerationConfig
from lorasum.data.causal import encode_causal, prompt_ids
from lorasum.data.features import IGNORE_INDEX, feature_length
from lorasum.errors import LorasumError
from lorasum.generate import generate_summaries, length_batches

TEMPLATE = "Summarize this {lang_name} article.\n{text}\nSummary:"


@pytest.fixture(scope="module")
def tok():
    return ByT5Tokenizer()  # one id per byte: lengths are easy to reason about


def _example(text="Police closed the bridge on Friday.", summary="Bridge closed.", lang="en"):
    return {"id": "x", "lang": lang, "text": text, "summary": summary}


def test_labels_mask_the_prompt_and_end_with_eos(tok):
    [f] = encode_causal([_example()], tok, max_source_length=200, max_target_length=50, prompt_template=TEMPLATE)
    assert len(f["input_ids"]) == len(f["labels"])
    prompt = "Summarize this English article.\nPolice closed the bridge on Friday.\nSummary:"
    n_prompt = len(prompt.encode())
    assert tok.decode(f["input_ids"][:n_prompt]) == prompt
    assert f["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert f["labels"][n_prompt:] == f["input_ids"][n_prompt:]
    assert f["labels"][-1] == tok.eos_token_id and f["input_ids"].count(tok.eos_token_id) == 1
    assert tok.decode(f["labels"][n_prompt:-1]) == "Bridge closed."
    # a causal feature's cost is its sequence, not sequence + labels
    assert feature_length(f, is_decoder_only=True) == len(f["input_ids"])
    assert feature_length({"input_ids": [1, 2], "labels": [3]}) == 3


def test_a_long_article_is_cut_and_the_instruction_kept(tok):
    text = "word " * 100
    [f] = encode_causal([_example(text=text, summary="s" * 40)], tok, max_source_length=60, max_target_length=10,
                        prompt_template=TEMPLATE)
    prompt = tok.decode([t for t, lab in zip(f["input_ids"], f["labels"]) if lab == IGNORE_INDEX])
    assert len(prompt.encode()) == 60
    assert prompt.startswith("Summarize this English article.\nword word") and prompt.endswith("\nSummary:")
    assert f["labels"][-10:] == [ord("s") + 3] * 9 + [tok.eos_token_id]  # summary cut to 9 tokens + EOS


def test_language_name_fills_the_template_and_bad_templates_are_refused(tok):
    [ids] = prompt_ids(tok, ["x"], ["zh-CN"], max_source_length=100, prompt_template="{lang_name} ({lang}): {text}")
    assert tok.decode(ids) == "Chinese Simplified (zh-CN): x"
    with pytest.raises(LorasumError, match="exactly once"):
        prompt_ids(tok, ["x"], ["en"], max_source_length=100, prompt_template="no article here")
    with pytest.raises(LorasumError, match="placeholder"):
        prompt_ids(tok, ["x"], ["en"], max_source_length=100, prompt_template="{language}: {text}")
    with pytest.raises(LorasumError, match="no room for the article"):
        prompt_ids(tok, ["x"], ["en"], max_source_length=10, prompt_template=TEMPLATE)


class Seq2SeqEcho(torch.nn.Module):
    """Stands in for a seq2seq model: its 'summary' is the first 17 tokens of the article; records its inputs."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls = []
        self.config = PretrainedConfig(pad_token_id=0, eos_token_id=1)
        self.generation_config = TransformersGenerationConfig(pad_token_id=0, eos_token_id=1)

    def generate(self, input_ids, attention_mask, **kwargs):
        self.calls.append((input_ids.clone(), attention_mask.clone()))
        return input_ids[:, :17]


class FakeAccelerator:
    def __init__(self, rank, world):
        self.process_index, self.num_processes, self.device = rank, world, torch.device("cpu")
        self.is_main_process = rank == 0

    def autocast(self):
        import contextlib

        return contextlib.nullcontext()


def test_generation_shards_batches_across_processes_and_gathers_in_input_order(tok, monkeypatch):
    import accelerate.utils

    texts = [f"article number {i} " + "x" * (i * 7 % 23) for i in range(11)]
    cfg = GenerationConfig(num_beams=1, batch_size=2, max_source_length=64)

    single = generate_summaries(Seq2SeqEcho(), tok, texts, cfg, progress=False)
    assert single == [t[:17].strip() for t in texts]

    class Captured(Exception):
        pass

    def capture(obj):  # each process's share, as it would enter the all-gather
        raise Captured(obj[0])

    monkeypatch.setattr(accelerate.utils, "gather_object", capture)
    parts, models = {}, {}
    for rank in (0, 1):
        models[rank] = Seq2SeqEcho()
        with pytest.raises(Captured) as share:
            generate_summaries(models[rank], tok, texts, cfg, accelerator=FakeAccelerator(rank, 2), progress=False)
        parts[rank] = share.value.args[0]
    assert len(parts[0]) + len(parts[1]) == len(texts) and not set(parts[0]) & set(parts[1])
    n_batches = len(length_batches([len(t.encode()) + 1 for t in texts], 2, 64))  # + EOS
    assert n_batches >= 3 and len(models[0].calls) == (n_batches + 1) // 2 and len(models[1].calls) == n_batches // 2

    monkeypatch.setattr(accelerate.utils, "gather_object", lambda obj: [obj[0], parts[1]])
    merged = generate_summaries(Seq2SeqEcho(), tok, texts, cfg, accelerator=FakeAccelerator(0, 2), progress=False)
    assert merged == single


def test_length_batches_fill_the_padded_batch_budget_longest_first():
    lengths = [500, 20, 480, 30, 25, 510, 40, 22, 35, 28, 26, 24, 21, 23, 27]
    batches = length_batches(lengths, 2, 512, max_growth=4)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    assert batches[:2] == [[5, 0], [2, 6]]  # long articles: batch_size of them, longest first
    for b in batches:
        assert len(b) * lengths[b[0]] <= 2 * 512 and lengths[b[0]] == max(lengths[i] for i in b)
        assert len(b) <= 8
    assert max(len(b) for b in batches) == 8  # short ones fill the budget, up to 4 x batch_size


def test_tensor_no_repeat_ngram_bans_what_transformers_bans():
    import torch
    from transformers.generation.logits_process import NoRepeatNGramLogitsProcessor

    from lorasum.generate import TensorNoRepeatNGram

    g = torch.Generator().manual_seed(0)
    for n in (1, 2, 3, 4):
        for length in (1, 2, 3, 5, 20, 60):
            ids = torch.randint(0, 6, (7, length), generator=g)
            scores = torch.randn(7, 10, generator=g)
            expected = NoRepeatNGramLogitsProcessor(n)(ids, scores.clone())
            assert torch.equal(TensorNoRepeatNGram(n)(ids, scores.clone()), expected), (n, length)
    # and it does ban something: "a b a" may not continue with "b" for n=2
    scores = TensorNoRepeatNGram(2)(torch.tensor([[1, 2, 1]]), torch.zeros(1, 4))
    assert scores[0].tolist() == [0, 0, -float("inf"), 0]


def _sharp_seq2seq(arch: str):
    """A tiny seq2seq model with large weights: peaked logits, so the output depends on every cached state."""
    from transformers import BartConfig, BartForConditionalGeneration, MT5Config, MT5ForConditionalGeneration

    torch.manual_seed(0)
    if arch == "mt5":
        return MT5ForConditionalGeneration(MT5Config(
            vocab_size=384, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2, num_heads=4,
            decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, tie_word_embeddings=False,
            initializer_factor=1.0)).eval()
    return BartForConditionalGeneration(BartConfig(
        vocab_size=384, d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=1024,
        pad_token_id=0, eos_token_id=1, bos_token_id=1, decoder_start_token_id=1, forced_eos_token_id=1,
        init_std=0.3)).eval()


ARTICLES = ["Un pont a ouvert à Lyon.", "Пожар закрыл мост в Казани; никто не пострадал.", "成都新博物馆",
            "Police closed the bridge on Friday after a fire in Leeds."]


@pytest.mark.parametrize("arch", ["mt5", "bart"])
def test_beam_search_cache_gives_the_summaries_of_transformers_default_cache(arch, tok):
    from lorasum.generate import BeamSearchCache, TensorNoRepeatNGram

    model = _sharp_seq2seq(arch)
    x = tok(ARTICLES, return_tensors="pt", padding=True)
    kw = dict(num_beams=4, max_new_tokens=24, length_penalty=0.6, early_stopping=False, do_sample=False,
              logits_processor=[TensorNoRepeatNGram(2)])
    reorders = []

    class RecordingCache(BeamSearchCache):
        def reorder_cache(self, beam_idx):
            reorders.append(beam_idx.view(len(ARTICLES), 4) % 4)  # the beam each new beam continues, per article
            super().reorder_cache(beam_idx)

    with torch.inference_mode():
        expected = model.generate(**x, **kw)
        got = model.generate(**x, **kw, cache=RecordingCache())
    assert torch.equal(expected, got)
    # the check has teeth: beams were reordered, differently for different articles
    identity = torch.arange(4).expand(len(ARTICLES), 4)
    assert any(not torch.equal(r, identity) for r in reorders)
    assert any(len({tuple(row.tolist()) for row in r}) > 1 for r in reorders)


@pytest.mark.parametrize("arch", ["mt5", "bart"])
def test_seq2seq_summaries_are_transformers_beam_search_with_xlsum_settings(arch, tok):
    model = _sharp_seq2seq(arch)
    with torch.inference_mode():
        ids = model.generate(**tok(ARTICLES, return_tensors="pt", padding=True), num_beams=4, length_penalty=0.6,
                             no_repeat_ngram_size=2, max_new_tokens=24)
    expected = [t.strip() for t in tok.batch_decode(ids, skip_special_tokens=True)]
    cfg = GenerationConfig(max_target_length=24, batch_size=4)  # XL-Sum's beams, length penalty, no-repeat 2
    assert generate_summaries(model, tok, ARTICLES, cfg, progress=False) == expected
