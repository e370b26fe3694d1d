"""Core ROUGE behaviour that needs neither the reference scorer nor real data."""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from lorasum.errors import LorasumError
from lorasum.metrics import score_items, scorer_info
from lorasum.metrics.rouge import lcs_length, text_tokens
from lorasum.metrics.stemmers import RafiStemmer, bengali_rules, hindi_stem
from lorasum.metrics.tokenize import burmese_syllables, sanitize

from .conftest import REPO

SCRIPTS = {
    "en": "The committee approved the new budget for public hospitals on Tuesday.",
    "ru": "Комитет одобрил новый бюджет для государственных больниц во вторник.",
    "uk": "Комітет схвалив новий бюджет для державних лікарень у вівторок.",
    "ar": "وافقت اللجنة على الميزانية الجديدة للمستشفيات العامة يوم الثلاثاء.",
    "fa": "کمیته بودجه جدید بیمارستان‌های دولتی را روز سه‌شنبه تصویب کرد.",
    "hi": "समिति ने मंगलवार को सरकारी अस्पतालों के लिए नए बजट को मंजूरी दी।",
    "bn": "কমিটি মঙ্গলবার সরকারি হাসপাতালের জন্য নতুন বাজেট অনুমোদন করেছে।",
    "zh-CN": "委员会周二批准了公立医院的新预算。",
    "zh-TW": "委員會週二批准了公立醫院的新預算。",
    "ja": "委員会は火曜日に公立病院の新しい予算を承認した。",
    "ko": "위원회는 화요일 공립 병원의 새 예산을 승인했다.",
    "th": "คณะกรรมการอนุมัติงบประมาณใหม่สำหรับโรงพยาบาลรัฐเมื่อวันอังคาร",
    "my": "ကော်မတီက အင်္ဂါနေ့တွင် ပြည်သူ့ဆေးရုံများအတွက် ဘတ်ဂျက်အသစ်ကို အတည်ပြုခဲ့သည်။",
    "am": "ኮሚቴው ማክሰኞ ለመንግስት ሆስፒታሎች አዲሱን በጀት አጽድቋል።",
    "ta": "குழு செவ்வாய்க்கிழமை அரசு மருத்துவமனைகளுக்கான புதிய பட்జெட்டுக்கு ஒப்புதல் அளித்தது.",
    "tr": "Komite salı günü devlet hastaneleri için yeni bütçeyi onayladı.",
    "es": "El comité aprobó el nuevo presupuesto para los hospitales públicos el martes.",
    "sr-Latn": "Komitet je u utorak odobrio novi budžet za državne bolnice.",
}


@pytest.mark.parametrize("lang", sorted(SCRIPTS))
def test_identical_prediction_scores_100_in_every_script(lang):
    text = SCRIPTS[lang]
    item = score_items([text], [text], lang)[0]
    for metric in ("rouge1", "rouge2", "rougeL"):
        assert item[metric] == {"p": 1.0, "r": 1.0, "f": 1.0}, (lang, metric)
    assert len(text_tokens(text, None if lang is None else _name(lang))) >= 3


def _name(lang):
    from lorasum.metrics.rouge import reference_name

    return reference_name(lang)


def test_disjoint_texts_score_zero_across_scripts():
    langs = sorted(SCRIPTS)
    preds = [SCRIPTS[lang] for lang in langs]
    refs = ["qwerty zxcvb 12345"] * len(langs)
    for lang, item in zip(langs, score_items(preds, refs, langs)):
        for metric in ("rouge1", "rouge2", "rougeL"):
            assert item[metric]["f"] == 0.0, (lang, metric)


def test_hand_computed_english_scores():
    item = score_items(["the cat sat on a mat"], ["the cat was sitting on the mat"], "en")[0]
    # tokens: pred [the cat sat on a mat], ref [the cat was sit on the mat] (stemmed)
    assert item["rouge1"]["p"] == pytest.approx(4 / 6)
    assert item["rouge1"]["r"] == pytest.approx(4 / 7)
    assert item["rouge2"]["p"] == pytest.approx(1 / 5)  # "the cat"
    assert item["rougeL"]["r"] == pytest.approx(4 / 7)  # the cat on mat


def test_empty_and_punctuation_only_sides_score_zero():
    items = score_items(["", "!!! ...", "word"], ["word", "word", "?!"], "en")
    for item in items:
        for metric in ("rouge1", "rouge2", "rougeL"):
            assert item[metric] == {"p": 0.0, "r": 0.0, "f": 0.0}


def test_one_token_texts_have_no_bigrams():
    item = score_items(["hello"], ["hello"], "en")[0]
    assert item["rouge1"]["f"] == 1.0 and item["rougeL"]["f"] == 1.0
    assert item["rouge2"] == {"p": 0.0, "r": 0.0, "f": 0.0}


def test_text_pipeline_details():
    assert sanitize("a\u200db c\u200cd") == "ab cd"  # ZWJ/ZWNJ deleted, joining letters
    assert sanitize("x\u00a0y\tz\u3000w") == "x y z w"  # Zs and tabs are spaces
    assert sanitize("«quoted»—dash, and $5^2") == "quoted dash and 5 2"
    assert sanitize("\u2028") == ""  # str.split whitespace, as in the reference
    assert text_tokens("COVID19 cases", "english") == ("covid", "19", "case")
    assert text_tokens("İstanbul", "turkish") != text_tokens("istanbul", "turkish")  # lower() gives i + U+0307
    assert text_tokens("北京abc大学", "english") == ("北", "京", "abc", "大", "学")
    # jieba keeps spaces as tokens; they count
    assert " " in text_tokens("我们 今天", "chinese")
    # NFC and NFD differ (no normalisation)
    assert text_tokens("café", "french") != text_tokens("cafe\u0301", "french")


def test_stemmers():
    assert hindi_stem("लड़कियों") == "लड़क"
    assert hindi_stem("का") == "का"
    rafi = RafiStemmer(bengali_rules())
    assert rafi.stem("আমাকে") == "আমা"
    assert rafi.stem("করেছে") == "কর"
    assert rafi.stem("করব") == "কর"  # replace rule রব -> র
    assert rafi.stem("ে") == "ে"
    assert text_tokens("running quickly", "english") == ("run", "quick")
    assert text_tokens("running quickly", "czech") == ("running", "quickly")  # no stemmer
    assert text_tokens("runs", None) == ("run",)  # lang=None: Porter


def test_burmese_syllables():
    assert burmese_syllables("မြန်မာ") == ["မြန်", "မာ"]
    assert burmese_syllables("") == []


def test_lcs_matches_dynamic_programming():
    rng = random.Random(0)

    def dp(a, b):
        t = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                t[i][j] = t[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else max(t[i - 1][j], t[i][j - 1])
        return t[-1][-1]

    for _ in range(400):
        a = tuple(rng.choice("abcde ") for _ in range(rng.randint(0, 70)))
        b = tuple(rng.choice("abcdef") for _ in range(rng.randint(0, 70)))
        assert lcs_length(a, b) == dp(a, b) == lcs_length(b, a)


def test_languages_per_item_and_by_name():
    one = score_items(["a b c"], ["a b d"], "english")
    assert score_items(["a b c"], ["a b d"], ["en"]) == one


def test_unknown_language_lists_accepted_codes():
    with pytest.raises(LorasumError, match="accepted codes: .*zh-CN"):
        score_items(["a"], ["a"], "klingon")
    with pytest.raises(LorasumError, match="2 languages for 1 items"):
        score_items(["a"], ["a"], ["en", "en"])
    with pytest.raises(LorasumError, match="predictions"):
        score_items(["a", "b"], ["a"], "en")
    with pytest.raises(LorasumError, match="expected a string"):
        score_items([None], ["a"], "en")


def test_scorer_info_records_settings_and_fallback():
    info = scorer_info(["en", "zh-CN", "cs", None])
    assert info["languages"]["en"] == {"reference_lang": "english", "segmenter": "pyonmttok-aggressive",
                                       "stemmer": "snowball-english"}
    assert info["languages"]["zh-CN"]["segmenter"] == "jieba"
    assert info["languages"]["cs"]["stemmer"] is None
    assert info["languages"]["none"] == {"reference_lang": None, "segmenter": "pyonmttok-aggressive",
                                         "stemmer": "porter"}
    assert isinstance(info["stopwords_available"], bool)
    json.dumps(info)


def test_workers_give_identical_results():
    preds = [SCRIPTS[k] for k in sorted(SCRIPTS)] * 2
    refs = [SCRIPTS["en"]] * len(preds)
    langs = sorted(SCRIPTS) * 2
    assert score_items(preds, refs, langs, workers=2) == score_items(preds, refs, langs)


def test_workers_fork_after_numpy_from_a_script_without_main_guard(tmp_path):
    """numpy's BLAS threads do not stop the fork, and nothing re-runs an unguarded script."""
    script = tmp_path / "unguarded.py"
    script.write_text(textwrap.dedent(
        f"""
        import json, logging, sys
        import numpy as np
        np.ones((64, 64)) @ np.ones((64, 64))  # BLAS thread pool running
        from lorasum.metrics import score_items
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
        print("script body ran", file=sys.stderr)
        scripts = {SCRIPTS!r}
        preds = [scripts[k] for k in sorted(scripts)] * 3
        refs = [scripts["en"]] * len(preds)
        langs = sorted(scripts) * 3
        print(json.dumps(score_items(preds, refs, langs, workers=2) == score_items(preds, refs, langs)))
        """))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    proc = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env,
                          timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "true"
    assert "with 2 forked workers" in proc.stderr
    assert proc.stderr.count("script body ran") == 1


def test_workers_score_in_this_process_while_another_python_thread_runs(caplog):
    import threading

    preds = [SCRIPTS[k] for k in sorted(SCRIPTS)] * 2
    refs = [SCRIPTS["en"]] * len(preds)
    langs = sorted(SCRIPTS) * 2
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="busy-thread")
    thread.start()
    try:
        with caplog.at_level("INFO", logger="lorasum.metrics.rouge"):
            scored = score_items(preds, refs, langs, workers=2)
    finally:
        stop.set()
        thread.join()
    assert scored == score_items(preds, refs, langs)
    assert "in this process, not 2 workers: other Python threads are running (" in caplog.text
    assert "busy-thread" in caplog.text


def test_missing_stopwords_corpus_warns_and_is_recorded(tmp_path):
    """Without NLTK's stopwords, stopwords get stemmed: said loudly and recorded."""
    code = textwrap.dedent(
        f"""
        import json, logging, nltk
        nltk.data.path[:] = [{str(tmp_path)!r}]
        from lorasum.metrics import score_items, scorer_info
        records = []
        handler = logging.Handler()
        handler.emit = records.append
        logging.getLogger("lorasum.metrics").addHandler(handler)
        item = score_items(["being there"], ["being there"], "en")[0]
        from lorasum.metrics.rouge import text_tokens
        print(json.dumps({{"warned": any("stopwords" in r.getMessage() for r in records),
                          "info": scorer_info("en"), "tokens": text_tokens("being", "english")}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "NLTK_DATA": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["warned"]
    assert res["info"]["stopwords_available"] is False
    assert res["info"]["languages"]["en"]["stemmer"] == "snowball-english-stemming-stopwords"
    assert res["tokens"] == ["be"]  # a stopword, stemmed only because the corpus is missing


def test_stopwords_left_unstemmed_when_corpus_present():
    from lorasum.metrics.stemmers import stopwords_available

    if not stopwords_available():
        pytest.skip("NLTK stopwords corpus not available")
    assert text_tokens("being", "english") == ("being",)


def test_score_tokens_matches_score_items():
    from lorasum.metrics.rouge import score_tokens

    pred, ref = "the cat sat on a mat", "the cat was sitting on the mat"
    assert score_tokens(text_tokens(ref, "english"), text_tokens(pred, "english")) == \
        score_items([pred], [ref], "en")[0]


def test_shipped_bengali_rules_are_the_upstream_file():
    from .conftest import SHARED

    upstream = SHARED / "bengali_stemmer" / "common.rules"
    if not upstream.is_file():
        pytest.skip(f"{upstream} not found")
    assert bengali_rules().encode("utf-8") == upstream.read_bytes()


def test_thai_words_prefixes_match_pythainlp_trie():
    from pythainlp.corpus import thai_words
    from pythainlp.util import Trie

    from lorasum.metrics.tokenize import ThaiWords

    words = sorted(thai_words())[:3000] + [" การ ", "กา", ""]
    trie, ours = Trie(words), ThaiWords(words)
    texts = ["การเมืองไทยวันนี้", "กากการ x การ", "ก", "", "abc การ"]
    rng = random.Random(0)
    texts += ["".join(rng.choice(words[:200])) for _ in range(50)]
    for text in texts:
        for start in range(len(text) + 1):
            assert ours.prefixes(text, start) == trie.prefixes(text, start)


@pytest.mark.parametrize("state", ["fresh", "stale", "corrupt"])
def test_jieba_dictionary_cache_gives_jiebas_dictionary(tmp_path, monkeypatch, state):
    import jieba

    from lorasum.metrics import tokenize

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path, _ = tokenize._jieba_cache_path(jieba)
    if state == "stale":
        tokenize._load_jieba_dictionary(jieba.Tokenizer(), jieba)  # writes the cache
        import marshal

        with open(path, "rb") as f:
            key, words, freqs, total = marshal.loads(f.read())
        with open(path, "wb") as f:
            f.write(marshal.dumps(("old key", "x", b"", 1)))
    elif state == "corrupt":
        with open(path, "wb") as f:
            f.write(b"not a cache")
    expected = jieba.Tokenizer()
    expected.initialize()
    for _ in range(2):  # first call may rebuild the file, second reads it
        tok = jieba.Tokenizer()
        tokenize._load_jieba_dictionary(tok, jieba)
        assert tok.initialized and tok.total == expected.total and tok.FREQ == expected.FREQ


@pytest.mark.skipif(importlib.util.find_spec("scipy") is None and importlib.util.find_spec("sklearn") is None,
                    reason="neither scipy nor scikit-learn installed: nothing for NLTK to import")
def test_stemmers_load_nltk_without_scipy_or_sklearn_and_leave_them_importable():
    code = ("import sys\n"
            "from lorasum.metrics.stemmers import stem_tokens\n"
            "stems = stem_tokens(['running', 'книгами'], 'english') + stem_tokens(['книгами'], 'russian')\n"
            "heavy = [m for m in ('scipy', 'sklearn') if m in sys.modules]\n"
            "import importlib.util\n"
            "print(stems, heavy, [importlib.util.find_spec(m) is not None for m in ('scipy', 'sklearn')])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)}).stdout
    stems, heavy, findable = ast.literal_eval("(" + out.strip().replace("] [", "], [") + ")")
    from nltk.stem import SnowballStemmer

    assert stems == ["run", "книгами", SnowballStemmer("russian").stem("книгами")]
    assert heavy == []
    assert findable == [importlib.util.find_spec(m) is not None for m in ("scipy", "sklearn")]


@pytest.mark.parametrize("enabled", [True, False])
def test_no_garbage_collection_while_scoring_and_the_collector_restored(enabled):
    import gc

    texts = [f"the {i} quick brown foxes were jumping over {i % 7} lazy dogs again" for i in range(400)]
    score_items(texts[:2], texts[:2], "en")  # stemmers loaded before the count starts
    collections = []

    def count(phase, info):  # a collection that starts inside the scoring
        frame = sys._getframe(1)
        while frame is not None and phase == "start":
            if frame.f_code.co_name == "_score_items":
                collections.append(info["generation"])
                break
            frame = frame.f_back

    (gc.enable if enabled else gc.disable)()
    gc.collect()  # the allocation count starts from 0
    gc.callbacks.append(count)
    try:
        scored = score_items(texts, texts[::-1], "en")
        assert gc.isenabled() is enabled
    finally:
        gc.callbacks.remove(count)
        gc.enable()
    assert len(scored) == 400 and scored[0]["rouge1"]["f"] < 1.0
    assert collections == []
