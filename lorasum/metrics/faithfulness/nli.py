"""NLI entailment of a summary given its article: P(entailment) from a multilingual model.

Two kinds of model, told apart by the model's config (never its name):

- **classifier**: an encoder with a sequence-classification head trained on NLI (e.g.
  ``MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7``), fed the pair
  (premise = article, hypothesis = summary). The entailment class is read from
  ``config.id2label`` (a label named ``entailment`` or ``entail``, any case); a model
  without one is refused. Score = softmax probability of that class.
- **seq2seq judge** (``config.is_encoder_decoder``, SEAHORSE/TRUE style, e.g. mT5 or
  T5 judges): input ``premise: {premise} hypothesis: {hypothesis}`` (configurable);
  score = probability of the positive token (``"1"``) in the softmax over the whole
  vocabulary at the first decoding step, as SEAHORSE and TRUE report it. With a
  ``negative_token`` the score is instead P(pos) / (P(pos) + P(neg)), which ignores
  probability mass on other tokens.

Long articles (SummaC-ZS, Laban et al. 2022): the article is cut, by the model's own
tokenizer, into windows overlapping by a quarter so that premise + hypothesis fit the
model's input limit; the score is the maximum over windows. ``max_chunks`` bounds the
windows per article (the rest of the article is then cut and the item counted as
truncated); a hypothesis too long to leave room for a premise is cut too. With
``per_sentence`` each summary sentence (:func:`~.sentences.split_sentences`) is scored
on its own and the summary's score is their mean.

Every (premise window, hypothesis) input is scored once: inputs are sorted by length and
batched, run on the GPU when there is one, with a progress bar. Scores are cached on
disk per scorer key (model id, revision or weights fingerprint, settings) and text hashes
(:class:`~.cache.ScoreCache`), so a pair is never scored twice.

Why hand-written: transformers' zero-shot pipeline truncates instead of chunking and
has no seq2seq judge; SummaC and AlignScore are English-only packages tied to their own
models.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from lorasum.errors import LorasumError
from lorasum.metrics.faithfulness.cache import ScoreCache, text_hash
from lorasum.metrics.faithfulness.sentences import split_sentences

SEAHORSE_PROMPT = "premise: {premise} hypothesis: {hypothesis}"
ENTAILMENT_LABELS = ("entailment", "entail")
_DEFAULT_MAX_LENGTH = 512
_MIN_PREMISE = 16  # premise tokens per window at least
_OVERLAP = 0.25


@dataclass(frozen=True)
class NLISettings:
    """Everything besides the model that changes a score; part of the cache key."""

    max_length: int | None = None
    max_chunks: int | None = None
    per_sentence: bool = False
    prompt: str = SEAHORSE_PROMPT
    positive_token: str = "1"
    negative_token: str | None = None


def entailment_index(id2label: dict) -> int:
    """Index of the entailment class in ``id2label``; raises when no label names it."""
    for idx, label in id2label.items():
        if str(label).strip().lower() in ENTAILMENT_LABELS:
            return int(idx)
    labels = ", ".join(f"{k}: {v!r}" for k, v in sorted(id2label.items(), key=lambda kv: int(kv[0])))
    raise LorasumError(f"the NLI model has no entailment label (id2label is {{{labels}}}); use an NLI model "
                       "whose config names an 'entailment' class, or a seq2seq judge")


def _fingerprint(model_id: str, revision: str | None, config) -> str:
    """Revision, hub commit, or a SHA-256 of a local folder's config and weight files."""
    if revision:
        return f"revision:{revision}"
    commit = getattr(config, "_commit_hash", None)
    path = Path(model_id)
    if not path.is_dir():
        return f"commit:{commit}" if commit else "unversioned"
    h = hashlib.sha256()
    for f in sorted(path.iterdir()):
        if f.is_file() and (f.name == "config.json" or f.suffix in (".safetensors", ".bin")):
            h.update(f.name.encode())
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
    return f"sha256:{h.hexdigest()}"


def _single_token(tok, text: str, what: str) -> int:
    ids = [i for i in tok(text, add_special_tokens=False)["input_ids"] if tok.decode([i]).strip()]
    if len(ids) != 1:
        raise LorasumError(f"{what} {text!r} is {len(ids)} tokens for this tokenizer; give a single-token string")
    return ids[0]


class NLIScorer:
    """P(entailment) of summaries given articles with one NLI model (see the module docstring)."""

    def __init__(self, model_id: str, *, revision: str | None = None, settings: NLISettings | None = None,
                 device: str | None = None, batch_size: int = 16):
        from transformers import AutoConfig, AutoModelForSeq2SeqLM, AutoModelForSequenceClassification, AutoTokenizer

        self.model_id, self.revision = model_id, revision
        self.settings = settings or NLISettings()
        self.batch_size = batch_size
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        try:
            config = AutoConfig.from_pretrained(model_id, revision=revision)
        except (OSError, ValueError) as err:
            raise LorasumError(f"faithfulness model {model_id!r} could not be loaded: {err}") from None
        archs = list(getattr(config, "architectures", None) or [])
        if getattr(config, "is_encoder_decoder", False):
            self.kind = "seq2seq"
            model = AutoModelForSeq2SeqLM.from_pretrained(model_id, revision=revision)
        elif any(a.endswith("ForSequenceClassification") for a in archs):
            self.kind = "classifier"
            self.entailment_index = entailment_index(config.id2label)
            model = AutoModelForSequenceClassification.from_pretrained(model_id, revision=revision)
        else:
            raise LorasumError(f"faithfulness model {model_id!r} is neither a sequence-classification NLI model "
                               f"nor an encoder-decoder judge (architectures: {archs or 'none'})")
        self.tokenizer = AutoTokenizer.from_pretrained(model_id, revision=revision)
        self.model = model.to(self.device).eval()
        self.fingerprint = _fingerprint(model_id, revision, config)
        self.max_length = self._max_length(config)
        if self.kind == "seq2seq":
            self.positive_id = _single_token(self.tokenizer, self.settings.positive_token, "positive_token")
            neg = self.settings.negative_token
            self.negative_id = _single_token(self.tokenizer, neg, "negative_token") if neg else None
            self.decoder_start = config.decoder_start_token_id
            empty = self.settings.prompt.format(premise="", hypothesis="")
            self.overhead = len(self.tokenizer(empty)["input_ids"])
        else:
            tok = self.tokenizer
            pair = len(tok("a", "b")["input_ids"])
            self.overhead = pair - len(tok("a", add_special_tokens=False)["input_ids"]) - len(
                tok("b", add_special_tokens=False)["input_ids"])
        self.use_token_types = self.kind == "classifier" and (getattr(config, "type_vocab_size", 0) or 0) > 1

    def _max_length(self, config) -> int:
        if self.settings.max_length:
            return self.settings.max_length
        limits = [n for n in (getattr(self.tokenizer, "model_max_length", None),
                              getattr(config, "max_position_embeddings", None)) if n and n < 1_000_000]
        return min(limits) if limits else _DEFAULT_MAX_LENGTH

    def key(self) -> str:
        """Cache key: model id, revision/fingerprint and settings."""
        return json.dumps({"model": self.model_id, "fingerprint": self.fingerprint, "kind": self.kind,
                           "max_length": self.max_length, **self.settings.__dict__}, sort_keys=True)

    def info(self) -> dict:
        """What produced the scores, to store beside them."""
        return {"model": self.model_id, "revision": self.revision, "fingerprint": self.fingerprint,
                "kind": self.kind, "max_length": self.max_length,
                "entailment_label": (self.model.config.id2label[self.entailment_index]
                                     if self.kind == "classifier" else None),
                "score": ("P(entailment), max over article windows" if self.kind == "classifier" else
                          f"P({self.settings.positive_token!r})" + (
                              f" / (P({self.settings.positive_token!r}) + P({self.settings.negative_token!r}))"
                              if self.settings.negative_token else "") + ", max over article windows"),
                **{k: v for k, v in self.settings.__dict__.items() if k != "max_length"}}

    # --- building inputs ----------------------------------------------------------------

    def _premise_windows(self, article: str, budget: int) -> tuple[list[str], int]:
        """Article windows of at most ``budget`` tokens (overlapping), and how many windows were needed."""
        enc = self.tokenizer(article, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        ids, offsets = enc["input_ids"], enc.get("offset_mapping")
        if len(ids) <= budget:
            return [article], 1
        step = max(1, budget - int(budget * _OVERLAP))
        starts = list(range(0, max(len(ids) - budget, 0) + step, step))
        windows = []
        for s in starts:
            e = min(s + budget, len(ids))
            if offsets:
                windows.append(article[offsets[s][0]:offsets[e - 1][1]])
            else:
                windows.append(self.tokenizer.decode(ids[s:e], skip_special_tokens=True))
            if e == len(ids):
                break
        return windows, len(windows)

    def _encode(self, premise: str, hypothesis: str) -> dict:
        if self.kind == "seq2seq":
            text = self.settings.prompt.format(premise=premise, hypothesis=hypothesis)
            return self.tokenizer(text, truncation=True, max_length=self.max_length)
        return self.tokenizer(premise, hypothesis, truncation="only_first", max_length=self.max_length)

    def _plan(self, article: str, summary: str, lang: str | None) -> tuple[list[list[dict]], bool, int]:
        """Model inputs per hypothesis, whether anything was cut, and the windows of the longest plan."""
        hyps = split_sentences(summary, lang) if self.settings.per_sentence else [summary.strip()]
        plans, cut, most = [], False, 0
        for hyp in hyps:
            h_ids = self.tokenizer(hyp, add_special_tokens=False, verbose=False)["input_ids"]
            # a hypothesis gets at most half the input: the rest is left to the article, so
            # a long summary cannot shrink the windows to a few tokens each
            room = self.max_length - self.overhead - max(self.max_length // 2, _MIN_PREMISE)
            if len(h_ids) > room:
                hyp = self.tokenizer.decode(h_ids[:max(room, 1)], skip_special_tokens=True)
                h_ids, cut = h_ids[:max(room, 1)], True
            budget = max(self.max_length - self.overhead - len(h_ids) - 2, _MIN_PREMISE)  # 2: re-tokenization slack
            windows, needed = self._premise_windows(article, budget)
            if self.settings.max_chunks and len(windows) > self.settings.max_chunks:
                windows, cut = windows[:self.settings.max_chunks], True
            most = max(most, needed)
            plans.append([self._encode(w, hyp) for w in windows])
        return plans, cut, most

    # --- running the model --------------------------------------------------------------

    @torch.no_grad()
    def probabilities(self, inputs: list[dict]) -> list[float]:
        """The score of each encoded input (one batch; padded here)."""
        width = max(len(x["input_ids"]) for x in inputs)
        pad = self.tokenizer.pad_token_id or 0
        ids = torch.full((len(inputs), width), pad, dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for i, x in enumerate(inputs):
            n = len(x["input_ids"])
            ids[i, :n] = torch.tensor(x["input_ids"])
            mask[i, :n] = 1
        kwargs = {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}
        if self.use_token_types and "token_type_ids" in inputs[0]:
            types = torch.zeros((len(inputs), width), dtype=torch.long)
            for i, x in enumerate(inputs):
                types[i, :len(x["token_type_ids"])] = torch.tensor(x["token_type_ids"])
            kwargs["token_type_ids"] = types.to(self.device)
        if self.kind == "classifier":
            probs = self.model(**kwargs).logits.float().softmax(-1)[:, self.entailment_index]
        else:
            start = torch.full((len(inputs), 1), self.decoder_start, dtype=torch.long, device=self.device)
            logits = self.model(**kwargs, decoder_input_ids=start).logits[:, -1].float()
            p = logits.softmax(-1)
            probs = p[:, self.positive_id]
            if self.negative_id is not None:
                probs = probs / (probs + p[:, self.negative_id]).clamp_min(1e-12)
        return probs.tolist()

    def score(self, articles: list[str], summaries: list[str], langs: list[str | None] | None = None, *,
              cache: ScoreCache | None = None, progress: bool = False) -> list[dict]:
        """``{"nli_entailment", "nli_chunks", "nli_truncated"}`` per (article, summary).

        ``nli_chunks`` is how many article windows the longest hypothesis needed (1: the
        article fitted whole); ``nli_truncated`` says some text was cut (``max_chunks`` or a
        hypothesis longer than the input limit). An empty summary scores ``None``.
        """
        langs = list(langs) if langs is not None else [None] * len(articles)
        if not len(articles) == len(summaries) == len(langs):
            raise LorasumError(f"NLI scoring needs one article and language per summary: {len(articles)} articles, "
                               f"{len(summaries)} summaries, {len(langs)} languages")
        key = self.key()
        hashes = [(text_hash(a), text_hash(s)) for a, s in zip(articles, summaries)]
        results: dict[tuple[str, str], tuple] = cache.get_many(key, hashes) if cache else {}
        todo: dict[tuple[str, str], int] = {}
        for i, (h, s) in enumerate(zip(hashes, summaries)):
            if h not in results and h not in todo and s.strip():
                todo[h] = i
        if todo:
            results.update(self._score_pairs(
                [(h, articles[i], summaries[i], langs[i]) for h, i in todo.items()], cache, key, progress))
        out = []
        for h, s in zip(hashes, summaries):
            if not s.strip():
                out.append({"nli_entailment": None, "nli_chunks": 0, "nli_truncated": False})
                continue
            e, c, t = results[h]
            out.append({"nli_entailment": e, "nli_chunks": int(c), "nli_truncated": bool(t)})
        return out

    def _score_pairs(self, pairs, cache, key, progress) -> dict:
        slots, flat = [], []  # slots[p] = (cut, windows, [[flat indices] per hypothesis])
        for _, article, summary, lang in pairs:
            plans, cut, needed = self._plan(article, summary, lang)
            hyp_idx = []
            for plan in plans:
                hyp_idx.append(list(range(len(flat), len(flat) + len(plan))))
                flat.extend(plan)
            slots.append((cut, needed, hyp_idx))
        order = sorted(range(len(flat)), key=lambda i: len(flat[i]["input_ids"]))
        probs = [0.0] * len(flat)
        done: dict = {}
        with _progress(progress, len(order), f"NLI {Path(self.model_id).name}") as advance:
            for start in range(0, len(order), self.batch_size):
                batch = order[start:start + self.batch_size]
                for i, p in zip(batch, self.probabilities([flat[i] for i in batch])):
                    probs[i] = p
                advance(len(batch))
        rows = []
        for (h, *_), (cut, needed, hyp_idx) in zip(pairs, slots):
            per_hyp = [max(probs[i] for i in idx) for idx in hyp_idx]
            score = sum(per_hyp) / len(per_hyp)
            if math.isnan(score):
                raise LorasumError(f"NLI model {self.model_id!r} returned NaN; run it in fp32")
            done[h] = (score, needed, cut)
            rows.append((*h, score, needed, cut))
        if cache is not None:
            cache.put_many(key, rows)
        return done


class _progress:
    """A rich progress bar with ETA (or nothing); ``advance(n)`` moves it."""

    def __init__(self, show: bool, total: int, label: str):
        self.show, self.total, self.label = show and total > 0, total, label

    def __enter__(self):
        if not self.show:
            return lambda n: None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

        self.bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                            TimeElapsedColumn(), TimeRemainingColumn(), transient=True)
        self.bar.__enter__()
        task = self.bar.add_task(self.label, total=self.total)
        return lambda n: self.bar.advance(task, n)

    def __exit__(self, *exc):
        if self.show:
            self.bar.__exit__(*exc)
        return False
