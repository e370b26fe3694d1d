"""Write lorasum's embedded demo sample, ``lorasum/demo/data.jsonl``.

The sample is synthetic news written from templates in this file (no corpus text): short
articles about local events in five languages and scripts (Latin: en, fr; Cyrillic: ru;
Arabic: ar; CJK: zh-CN), each with a one-sentence summary that restates its key facts.
It exists so that the whole pipeline can run offline in minutes; it says nothing about
summarization quality. Deterministic: ``python scripts/make_demo_data.py`` rewrites the
same file.
"""
from __future__ import annotations

import json
import random
from pathlib import Path

SPLITS = {"train": 64, "validation": 12, "test": 12}

LANGS = {
    "en": {
        "cities": ["Leeds", "Bristol", "Cardiff", "Glasgow", "Belfast", "Norwich", "York", "Exeter", "Hull", "Derby"],
        "things": ["bridge", "library", "hospital", "school", "stadium", "museum", "railway station", "park"],
        "articles": [
            ("The council of {city} has approved a plan to rebuild the old {thing}. Work will start in {month} and is "
             "expected to cost {n} million pounds. Local residents said the {thing} had been closed for years. "
             "The mayor said the project would create {m} jobs.",
             "{city} will rebuild its old {thing} for {n} million pounds, creating {m} jobs."),
            ("Police in {city} closed the area around the {thing} on {day} after a fire broke out. About {m} people "
             "were moved to safety and nobody was hurt. Firefighters said the fire started in a storage room. "
             "The {thing} will stay closed until {month}.",
             "A fire closed the {thing} in {city}; {m} people were moved to safety and nobody was hurt."),
            ("Visitors to the new {thing} in {city} reached {n} thousand in its first week, organisers said on {day}. "
             "The {thing} opened after {m} months of delays. Many families travelled from nearby towns to see it.",
             "The new {thing} in {city} drew {n} thousand visitors in its first week after {m} months of delays."),
        ],
        "months": ["March", "April", "May", "June", "July", "September", "October"],
        "days": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"],
    },
    "fr": {
        "cities": ["Lyon", "Nantes", "Lille", "Rennes", "Dijon", "Nice", "Brest", "Metz", "Tours", "Grenoble"],
        "things": ["pont", "musée", "hôpital", "stade", "marché", "théâtre", "port", "parc"],
        "articles": [
            ("La mairie de {city} a validé un projet pour rénover le vieux {thing}. Les travaux commenceront en {month} "
             "et coûteront {n} millions d'euros. Selon les habitants, le {thing} était fermé depuis des années. "
             "Le maire affirme que le chantier créera {m} emplois.",
             "{city} va rénover son vieux {thing} pour {n} millions d'euros et créer {m} emplois."),
            ("La police de {city} a bouclé le quartier du {thing} {day} après un incendie. Environ {m} personnes ont "
             "été évacuées et personne n'a été blessé. Selon les pompiers, le feu a pris dans un local technique. "
             "Le {thing} restera fermé jusqu'en {month}.",
             "Un incendie a fermé le {thing} de {city} ; {m} personnes ont été évacuées, sans blessés."),
            ("Le nouveau {thing} de {city} a accueilli {n} mille visiteurs lors de sa première semaine, ont annoncé "
             "les organisateurs {day}. L'ouverture avait pris {m} mois de retard. De nombreuses familles sont venues "
             "des villes voisines.",
             "Le nouveau {thing} de {city} a attiré {n} mille visiteurs en une semaine après {m} mois de retard."),
        ],
        "months": ["mars", "avril", "mai", "juin", "juillet", "septembre", "octobre"],
        "days": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"],
    },
    "ru": {
        "cities": ["Казани", "Самаре", "Томске", "Омске", "Перми", "Туле", "Калуге", "Иркутске", "Сочи", "Твери"],
        "things": ["мост", "музей", "стадион", "театр", "вокзал", "парк", "рынок", "порт"],
        "articles": [
            ("Власти в {city} одобрили план реконструкции старого объекта: {thing}. Работы начнутся в {month}, их "
             "стоимость составит {n} миллионов рублей. Жители говорят, что {thing} был закрыт много лет. "
             "По словам мэра, проект создаст {m} рабочих мест.",
             "В {city} реконструируют {thing} за {n} миллионов рублей, появится {m} рабочих мест."),
            ("Полиция в {city} оцепила район, где находится {thing}, в {day} после пожара. Около {m} человек были "
             "эвакуированы, никто не пострадал. Пожарные сообщили, что огонь начался в подсобном помещении. "
             "{thing} будет закрыт до {month}.",
             "Пожар закрыл {thing} в {city}: эвакуированы {m} человек, никто не пострадал."),
            ("Новый {thing} в {city} за первую неделю посетили {n} тысяч человек, сообщили организаторы в {day}. "
             "Открытие задержалось на {m} месяцев. Многие семьи приехали из соседних городов.",
             "Новый {thing} в {city} за неделю посетили {n} тысяч человек после задержки на {m} месяцев."),
        ],
        "months": ["марте", "апреле", "мае", "июне", "июле", "сентябре", "октябре"],
        "days": ["понедельник", "вторник", "среду", "четверг", "пятницу", "субботу"],
    },
    "ar": {
        "cities": ["عمّان", "الدوحة", "تونس", "الرباط", "بيروت", "مسقط", "جدة", "الإسكندرية", "وهران", "صفاقس"],
        "things": ["الجسر", "المتحف", "المستشفى", "الملعب", "المسرح", "الميناء", "السوق", "الحديقة"],
        "articles": [
            ("وافق مجلس مدينة {city} على خطة لإعادة بناء {thing} القديم. وستبدأ الأعمال في شهر {month} بتكلفة "
             "تبلغ {n} مليون دولار. وقال السكان إن {thing} كان مغلقا منذ سنوات. وأكد رئيس البلدية أن المشروع "
             "سيوفر {m} فرصة عمل.",
             "مدينة {city} تعيد بناء {thing} القديم بتكلفة {n} مليون دولار وتوفر {m} فرصة عمل."),
            ("أغلقت الشرطة في {city} المنطقة المحيطة بـ{thing} يوم {day} بعد اندلاع حريق. وتم إجلاء نحو {m} "
             "شخصا ولم يصب أحد بأذى. وقال رجال الإطفاء إن الحريق بدأ في غرفة تخزين. وسيبقى {thing} مغلقا "
             "حتى شهر {month}.",
             "حريق يغلق {thing} في {city} وإجلاء {m} شخصا دون إصابات."),
            ("استقبل {thing} الجديد في {city} {n} ألف زائر في أسبوعه الأول، حسبما أعلن المنظمون يوم {day}. "
             "وقد تأخر الافتتاح {m} أشهر. وجاءت عائلات كثيرة من المدن المجاورة.",
             "{thing} الجديد في {city} يستقبل {n} ألف زائر في أسبوعه الأول بعد تأخر {m} أشهر."),
        ],
        "months": ["مارس", "أبريل", "مايو", "يونيو", "يوليو", "سبتمبر", "أكتوبر"],
        "days": ["الاثنين", "الثلاثاء", "الأربعاء", "الخميس", "الجمعة", "السبت"],
    },
    "zh-CN": {
        "cities": ["成都", "杭州", "武汉", "西安", "南京", "青岛", "长沙", "昆明", "厦门", "大连"],
        "things": ["大桥", "博物馆", "医院", "体育场", "剧院", "火车站", "公园", "图书馆"],
        "articles": [
            ("{city}市政府批准了重建旧{thing}的计划。工程将于{month}开工，预计耗资{n}亿元。当地居民说，这座{thing}"
             "已经关闭多年。市长表示，该项目将创造{m}个就业岗位。",
             "{city}将耗资{n}亿元重建旧{thing}，创造{m}个就业岗位。"),
            ("{day}，{city}警方在{thing}附近发生火灾后封锁了该区域。约{m}人被疏散，无人受伤。消防部门说，"
             "火灾起于一间储物室。{thing}将关闭到{month}。",
             "{city}{thing}发生火灾，{m}人被疏散，无人受伤。"),
            ("主办方{day}表示，{city}新{thing}开放第一周接待游客{n}万人次。该{thing}的开放推迟了{m}个月。"
             "许多家庭从周边城市赶来参观。",
             "{city}新{thing}首周接待游客{n}万人次，此前推迟开放{m}个月。"),
        ],
        "months": ["三月", "四月", "五月", "六月", "七月", "九月", "十月"],
        "days": ["周一", "周二", "周三", "周四", "周五", "周六"],
    },
}


def make_article(spec: dict, rng: random.Random) -> tuple[str, str]:
    """One (article, summary) pair: a random template of ``spec`` with random slot values."""
    article, summary = rng.choice(spec["articles"])
    slots = {"city": rng.choice(spec["cities"]), "thing": rng.choice(spec["things"]),
             "n": rng.randint(2, 95), "m": rng.randint(3, 40), "month": rng.choice(spec["months"]),
             "day": rng.choice(spec["days"])}
    return article.format(**slots), summary.format(**slots)


def make_rows(seed: int = 13) -> list[dict]:
    rows = []
    for lang, spec in LANGS.items():
        rng = random.Random(f"demo:{seed}:{lang}")
        i = 0
        for split, count in SPLITS.items():
            for _ in range(count):
                text, summary = make_article(spec, rng)
                rows.append({"id": f"demo-{lang}-{i:04d}", "lang": lang, "split": split,
                             "text": text, "summary": summary})
                i += 1
    return rows


def main() -> None:
    out = Path(__file__).resolve().parents[1] / "lorasum" / "demo" / "data.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as f:
        for row in make_rows():
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
