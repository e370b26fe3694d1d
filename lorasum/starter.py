"""``lorasum init``: a commented starting run config for a chosen model, data and method.

The text is written from the typed config's own defaults, so a field renamed or added in
:mod:`lorasum.config` shows up here; the result is validated before it is written.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from lorasum.config import DataConfig, GenerationConfig, TrainingConfig, parse_run_config
from lorasum.errors import LorasumError
from lorasum.io import atomic_write_text
from lorasum.methods import METHODS


def _v(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True, allow_unicode=True).strip().removesuffix("\n...")


def starter_config(model: str, data: str, languages: list[str], method: str = "lora") -> str:
    """A commented run YAML; raises :class:`LorasumError` if the choices do not validate."""
    if method not in METHODS:
        raise LorasumError(f"--method: unknown method {method!r}; use one of {', '.join(METHODS)}")
    m = METHODS[method].config_class()
    t, g, d = TrainingConfig(), GenerationConfig(), DataConfig()
    method_lines = "".join(f"  {k}: {_v(v)}\n" for k, v in m.model_dump(mode="json").items() if k != "name")
    text = f"""\
# lorasum run config: `lorasum train THIS.yaml [section.field=value ...]`
# Every field below shows its default; delete what you do not change.
model:
  name: {_v(model)}            # hub id or a local folder saved with save_pretrained

data:
  source: {_v(data)}           # csebuetnlp/xlsum, or a JSONL/CSV/Parquet file or folder
  languages: {_v(languages)}   # XL-Sum codes or names; all are trained on together
  # test_languages: [ru]      # languages scored on the test split (default: the training ones)
  text_field: {d.text_field}
  summary_field: {d.summary_field}
  train_examples: null        # per language, seeded random sample; null = all
  validation_examples: {d.validation_examples}    # per language, for the validation loss during training
  test_examples: null         # per language; null = all

method:
  name: {method}
{method_lines}
training:
  epochs: {t.epochs}
  batch_size: {t.batch_size}
  grad_accum: {t.grad_accum}              # effective batch = batch_size x grad_accum
  lr: {t.lr}                   # LoRA usually wants a higher rate than full fine-tuning
  schedule: {t.schedule}
  warmup_ratio: {t.warmup_ratio}
  optimizer: {t.optimizer}             # or adafactor (XL-Sum's choice)
  precision: {t.precision}               # bf16 on recent GPUs; mT5 overflows in fp16
  max_source_length: {t.max_source_length}
  max_target_length: {t.max_target_length}
  seed: {t.seed}

generation:                   # XL-Sum's decoding settings
  num_beams: {g.num_beams}
  length_penalty: {g.length_penalty}
  no_repeat_ngram_size: {g.no_repeat_ngram_size}
  max_target_length: {g.max_target_length}
"""
    text = "\n".join(_align_comment(line) for line in text.splitlines()) + "\n"
    parse_run_config(yaml.safe_load(text), "lorasum init")
    return text


def _align_comment(line: str, column: int = 34) -> str:
    content, sep, comment = line.partition(" # ")
    if not sep or not content.strip():
        return line
    return f"{content.rstrip().ljust(column)}# {comment.strip()}"


def write_starter_config(path: str | Path, model: str, data: str, languages: list[str], method: str = "lora",
                         *, force: bool = False) -> Path:
    """Write :func:`starter_config` to ``path``; an existing file is kept unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise LorasumError(f"{path} exists; choose another -o or pass --force")
    return atomic_write_text(path, starter_config(model, data, languages, method))
