"""End to end with data lorasum did not know before: hub-style and save_to_disk folders,
Italian and Polish, a French -> English pair, and mBART with its language codes."""
from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from lorasum.run import train_and_evaluate

pytestmark = pytest.mark.slow

IT = [("Il governo ha approvato una nuova legge sulle energie rinnovabili per le famiglie.",
       "Approvata la legge sulle rinnovabili."),
      ("Il comune di Milano ha aperto un nuovo parco vicino alla stazione centrale.",
       "Nuovo parco a Milano vicino alla stazione."),
      ("La squadra di calcio della città ha vinto il campionato dopo dieci anni.",
       "La squadra ha vinto il campionato.")]
PL = [("Rząd przyjął we wtorek projekt ustawy o podwyżkach dla nauczycieli.", "Rząd przyjął projekt podwyżek."),
      ("W Krakowie otwarto nowy most nad Wisłą po dwóch latach budowy.", "Nowy most w Krakowie otwarty."),
      ("Miasto Gdańsk ogłosiło plan budowy nowej linii tramwajowej.", "Gdańsk zbuduje nową linię tramwajową.")]
FR_EN = [("Le gouvernement a approuvé mardi une nouvelle loi sur les énergies renouvelables.",
          "The government approved a new law on renewable energy."),
         ("La ville de Lyon a ouvert un nouveau parc près de la gare centrale.",
          "Lyon opened a new park near the central station."),
         ("L'équipe de football de la ville a gagné le championnat après dix ans.",
          "The city's football team won the championship after ten years.")]


def _rows(pairs, lang, n=12, **extra):
    return [{"id": f"{lang}-{i}", "text": pairs[i % len(pairs)][0] + f" ({i})", "summary": pairs[i % len(pairs)][1],
             **extra} for i in range(n)]


def _read(run):
    metrics = json.loads((run / "metrics.json").read_text())
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    return metrics, preds


def test_hub_style_folder_trains_and_evaluates_in_italian(tiny_run_config, tiny_mt5, tmp_path):
    root = tmp_path / "hub"
    (root / "data").mkdir(parents=True)
    for split in ("train", "validation", "test"):
        pq.write_table(pa.Table.from_pylist(_rows(IT, "it")), root / "data" / f"{split}-00000-of-00001.parquet")
    cfg = tiny_run_config(tiny_mt5, "lora", data={"source": str(root), "languages": ["it"], "train_examples": 8,
                                                   "validation_examples": 2, "test_examples": 3})
    metrics, preds = _read_after(train_and_evaluate(cfg, tmp_path / "run", progress=False), tmp_path / "run")
    assert set(metrics["rouge"]["per_lang"]) == {"it"} and len(preds) == 3
    assert metrics["scorer"]["languages"]["it"]["stemmer"].startswith("snowball-italian")


def test_save_to_disk_folder_trains_and_evaluates_in_polish(tiny_run_config, tiny_mt5, tmp_path):
    import datasets

    datasets.DatasetDict({s: datasets.Dataset.from_list(_rows(PL, "pl")) for s in ("train", "validation", "test")}
                         ).save_to_disk(str(tmp_path / "saved"))
    cfg = tiny_run_config(tiny_mt5, "full", data={"source": str(tmp_path / "saved"), "languages": ["pl"],
                                                   "train_examples": 8, "validation_examples": 2, "test_examples": 3})
    metrics, preds = _read_after(train_and_evaluate(cfg, tmp_path / "run", progress=False), tmp_path / "run")
    assert set(metrics["rouge"]["per_lang"]) == {"pl"} and len(preds) == 3
    assert metrics["scorer"]["languages"]["pl"]["stemmer"] is None


def _read_after(_metrics, run):
    return _read(run)


def test_french_article_english_summary_is_scored_in_english(tiny_run_config, tiny_mt5, tmp_path, monkeypatch):
    path = tmp_path / "fr_en.jsonl"
    rows = [{**r, "lang": "fr", "summary_lang": "en", "split": s} for s in ("train", "validation", "test")
            for r in _rows(FR_EN, f"fr-{s}")]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    import lorasum.metrics as metrics_mod

    scored_with = []
    real = metrics_mod.score_items
    monkeypatch.setattr(metrics_mod, "score_items",
                        lambda preds, refs, langs, **kw: scored_with.extend(langs) or real(preds, refs, langs, **kw))
    cfg = tiny_run_config(tiny_mt5, "lora", data={"source": str(path), "languages": ["fr"], "train_examples": 8,
                                                   "validation_examples": 2, "test_examples": 3})
    metrics, preds = _read_after(train_and_evaluate(cfg, tmp_path / "run", progress=False), tmp_path / "run")
    assert set(scored_with) == {"en"}
    assert list(metrics["scorer"]["languages"]) == ["en"]
    assert {p["lang"] for p in preds} == {"fr"} and {p["summary_lang"] for p in preds} == {"en"}


@pytest.fixture(scope="module")
def tiny_mbart(tmp_path_factory):
    """A tiny mBART-50 with a real MBart50 tokenizer built from a small sentencepiece model."""
    import sentencepiece as spm
    from transformers import MBart50TokenizerFast, MBartConfig, MBartForConditionalGeneration

    d = tmp_path_factory.mktemp("mbart")
    corpus = d / "corpus.txt"
    corpus.write_text("\n".join(a + "\n" + b for a, b in IT + PL + FR_EN) * 20, encoding="utf-8")
    spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(d / "sentencepiece.bpe"), vocab_size=60,
                                   model_type="unigram", character_coverage=1.0, bos_id=0, pad_id=1, eos_id=2,
                                   unk_id=3, minloglevel=2)
    tok = MBart50TokenizerFast.from_pretrained(str(d))
    torch.manual_seed(0)
    cfg = MBartConfig(vocab_size=len(tok), d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                      decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=256,
                      pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2, forced_eos_token_id=2)
    out = d / "model"
    MBartForConditionalGeneration(cfg).save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_mbart_gets_source_and_target_language_codes(tiny_mbart):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from lorasum.config import GenerationConfig
    from lorasum.data.features import encode_seq2seq
    from lorasum.generate import generate_summaries

    tok = AutoTokenizer.from_pretrained(tiny_mbart)
    code = tok.convert_tokens_to_ids
    feats = encode_seq2seq([{"id": "a", "lang": "fr", "summary_lang": "en", "text": FR_EN[0][0], "summary": FR_EN[0][1]},
                            {"id": "b", "lang": "pl", "text": PL[0][0], "summary": PL[0][1]},
                            {"id": "c", "lang": "it", "summary_lang": "it", "text": IT[0][0], "summary": IT[0][1]}],
                           tok, 64, 32)
    assert [f["input_ids"][0] for f in feats] == [code("fr_XX"), code("pl_PL"), code("it_IT")]
    assert [f["labels"][0] for f in feats] == [code("en_XX"), code("pl_PL"), code("it_IT")]

    model = AutoModelForSeq2SeqLM.from_pretrained(tiny_mbart).eval()
    seen = []
    real_generate = model.generate

    def spy(**kw):
        ids = real_generate(**kw)
        seen.append(ids[:, 1].tolist())
        return ids

    model.generate = spy
    gen = GenerationConfig(num_beams=1, max_target_length=4, no_repeat_ngram_size=0, batch_size=8)
    generate_summaries(model, tok, [FR_EN[0][0], PL[0][0], IT[0][0]], gen, langs=["fr", "pl", "it"],
                       summary_langs=["en", "pl", "it"])
    assert sorted(x for batch in seen for x in batch) == sorted([code("en_XX"), code("pl_PL"), code("it_IT")])
    seen.clear()
    generate_summaries(model, tok, [FR_EN[0][0], FR_EN[1][0]], gen, langs=["fr", "fr"], summary_langs=["en", "en"])
    assert [x for batch in seen for x in batch] == [code("en_XX")] * 2


def test_mbart_cross_lingual_run_end_to_end(tiny_run_config, tiny_mbart, tmp_path):
    path = tmp_path / "fr_en.jsonl"
    rows = [{**r, "lang": "fr", "summary_lang": "en", "split": s} for s in ("train", "validation", "test")
            for r in _rows(FR_EN, f"fr-{s}")]
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    cfg = tiny_run_config(tiny_mbart, "full", data={"source": str(path), "languages": ["fr"], "train_examples": 8,
                                                     "validation_examples": 2, "test_examples": 3})
    metrics, preds = _read_after(train_and_evaluate(cfg, tmp_path / "run", progress=False), tmp_path / "run")
    assert len(preds) == 3 and list(metrics["scorer"]["languages"]) == ["en"]


def test_unknown_language_for_the_tokenizer_is_a_clear_error(tiny_mbart):
    from transformers import AutoTokenizer

    from lorasum.errors import LorasumError
    from lorasum.models.langcodes import tokenizer_lang_code

    tok = AutoTokenizer.from_pretrained(tiny_mbart)
    assert tokenizer_lang_code(tok, "zh-CN") == "zh_CN" and tokenizer_lang_code(tok, "pt-BR") == "pt_XX"
    with pytest.raises(LorasumError, match="no language code for 'yo'"):
        tokenizer_lang_code(tok, "yo")
