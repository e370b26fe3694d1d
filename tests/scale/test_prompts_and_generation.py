"""Decoder-only features (prompt, article truncation, label mask, EOS) and generation order under sharding."""
import pytest
import torch
from transformers import ByT5Tokenizer

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


class EchoLM(torch.nn.Module):
    """Stands in for a causal LM: its 'summary' is the last three prompt tokens; records what it is given."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.calls = []

    def generate(self, input_ids, attention_mask, **kwargs):
        self.calls.append((input_ids.clone(), attention_mask.clone()))
        return torch.cat([input_ids, input_ids[:, -3:]], dim=1)


class FakeAccelerator:
    def __init__(self, rank, world):
        self.process_index, self.num_processes, self.device = rank, world, torch.device("cpu")
        self.is_main_process = rank == 0

    def autocast(self):
        import contextlib

        return contextlib.nullcontext()


def test_decoder_generation_uses_the_training_prompt_left_padded_and_returns_new_tokens(tok):
    texts = ["short one", "a much longer article than the first", "mid length text"]
    model = EchoLM()
    cfg = GenerationConfig(num_beams=1, batch_size=2, max_source_length=50)
    out = generate_summaries(model, tok, texts, cfg, langs=["en", "fr", "en"], is_decoder_only=True,
                             prompt_template=TEMPLATE, progress=False)
    # each summary is the prompt's last three tokens: the end of the instruction, never the article
    assert out == ["ry:"] * 3
    expected = prompt_ids(tok, texts, ["en", "fr", "en"], max_source_length=50, prompt_template=TEMPLATE)
    seen = []
    for ids, mask in model.calls:
        assert (mask[:, -1] == 1).all(), "decoder-only batches must be left-padded"
        seen += [row[mask_row.bool()].tolist() for row, mask_row in zip(ids, mask)]
    assert sorted(seen) == sorted(expected)
    assert all(len(p) <= 50 for p in expected) and max(len(p) for p in expected) == 50


def test_generation_shards_batches_across_processes_and_gathers_in_input_order(tok, monkeypatch):
    import accelerate.utils

    texts = [f"article number {i} " + "x" * (i * 7 % 23) for i in range(11)]
    cfg = GenerationConfig(num_beams=1, batch_size=2, max_source_length=64)

    class Seq2SeqEcho(EchoLM):
        def generate(self, input_ids, attention_mask, **kwargs):
            self.calls.append((input_ids.clone(), attention_mask.clone()))
            lengths = attention_mask.sum(1)  # right-padded: echo the first tokens of each article
            return torch.stack([input_ids[i, : min(int(lengths[i]), 17)].new_tensor(
                input_ids[i, :17].tolist()) for i in range(len(lengths))])

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


@pytest.mark.parametrize("arch", ["mt5", "bart"])
def test_beam_search_cache_gives_identical_summaries(arch, tmp_path):
    import torch
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lorasum.generate import BeamSearchCache, TensorNoRepeatNGram
    from lorasum.models.tiny import build_tiny_model

    path = build_tiny_model(tmp_path / arch, arch, d_model=32, layers=2)
    model, tok = AutoModelForSeq2SeqLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)
    x = tok(["Un pont a ouvert à Lyon.", "Пожар закрыл мост в Казани; никто не пострадал.", "成都新博物馆"],
            return_tensors="pt", padding=True)
    kw = dict(num_beams=4, max_new_tokens=24, length_penalty=0.6, early_stopping=True,
              logits_processor=[TensorNoRepeatNGram(2)])
    with torch.inference_mode():
        expected = model.generate(**x, **kw)
        got = model.generate(**x, **kw, past_key_values=BeamSearchCache())
    assert torch.equal(expected, got)
