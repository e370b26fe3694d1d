"""Sentence splitting per XL-Sum script."""
import pytest

from lorasum.metrics.faithfulness.sentences import split_sentences

CASES = {
    "latin": ("en", "The vote was held on Monday. Results came late! Was it fair? Nobody knows.",
              ["The vote was held on Monday.", "Results came late!", "Was it fair?", "Nobody knows."]),
    "cyrillic": ("ru", "Выборы прошли в понедельник. Итоги объявили поздно!",
                 ["Выборы прошли в понедельник.", "Итоги объявили поздно!"]),
    "arabic": ("ar", "هل انتهت الانتخابات؟ نعم انتهت. وبدأ الفرز", ["هل انتهت الانتخابات؟", "نعم انتهت.", "وبدأ الفرز"]),
    "urdu": ("ur", "انتخابات ختم ہو گئے۔ نتائج کل آئیں گے۔", ["انتخابات ختم ہو گئے۔", "نتائج کل آئیں گے۔"]),
    "devanagari": ("hi", "चुनाव सोमवार को हुए। नतीजे देर से आए।", ["चुनाव सोमवार को हुए।", "नतीजे देर से आए।"]),
    "bengali": ("bn", "নির্বাচন সোমবার হয়েছে। ফল দেরিতে এসেছে।", ["নির্বাচন সোমবার হয়েছে।", "ফল দেরিতে এসেছে।"]),
    "cjk": ("zh-CN", "选举在周一举行。结果很晚才公布！公平吗？", ["选举在周一举行。", "结果很晚才公布！", "公平吗？"]),
    "japanese": ("ja", "選挙は月曜日に行われた。結果は遅れた。", ["選挙は月曜日に行われた。", "結果は遅れた。"]),
    "burmese": ("my", "ရွေးကောက်ပွဲ ပြီးဆုံးပြီ။ရလဒ်များ နောက်ကျသည်။", ["ရွေးကောက်ပွဲ ပြီးဆုံးပြီ။", "ရလဒ်များ နောက်ကျသည်။"]),
    "ethiopic": ("am", "ምርጫው ሰኞ ተካሄደ።ውጤቱ ዘግይቷል።", ["ምርጫው ሰኞ ተካሄደ።", "ውጤቱ ዘግይቷል።"]),
    "newline": ("en", "Headline without a stop\nThe body starts here.", ["Headline without a stop", "The body starts here."]),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_split_sentences_per_script(script):
    lang, text, expected = CASES[script]
    assert split_sentences(text, lang) == expected


def test_numbers_and_closing_quotes_do_not_break_sentences():
    text = 'Growth was 3.5 percent. He said "it is over." Then he left'
    assert split_sentences(text, "en") == ["Growth was 3.5 percent.", 'He said "it is over."', "Then he left"]


def test_thai_splits_without_punctuation():
    text = "ผมไปตลาดเมื่อวานนี้ ซื้อผลไม้มาเยอะมาก วันนี้ฝนตกหนักมาก ถนนน้ำท่วม"
    sents = split_sentences(text, "th")
    assert len(sents) >= 2
    assert "".join(sents).replace(" ", "") == text.replace(" ", "")


def test_empty_text_has_no_sentences():
    assert split_sentences("  \n ", "en") == []
