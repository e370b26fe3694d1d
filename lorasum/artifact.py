"""What travels with a saved adapter or model: its inference settings and its Hub card.

``lorasum.json`` beside ``adapter_config.json`` (or ``config.json``) records the prompt
template and generation settings the run was trained and evaluated with, so
``lorasum summarize --adapter DIR`` decodes exactly as the run's evaluation did.
The card's YAML front matter follows the Hub's model-card metadata (language, license,
base_model, library_name, tags, model-index style metrics).
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from lorasum.config import GenerationConfig, RunConfig, load_run_config
from lorasum.errors import LorasumError
from lorasum.io import write_json

SETTINGS_FILE = "lorasum.json"

# Hub licence ids of datasets whose licence is known; anything else points to its card
DATASET_LICENCES: dict[str, tuple[str, str]] = {
    "csebuetnlp/xlsum": ("cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0; models trained on it inherit its non-commercial terms"),
    "GEM/xlsum": ("cc-by-nc-sa-4.0", "CC BY-NC-SA 4.0; models trained on it inherit its non-commercial terms"),
    "abisee/cnn_dailymail": ("apache-2.0", "Apache 2.0"),
    "cnn_dailymail": ("apache-2.0", "Apache 2.0"),
}


def dataset_licence(source: str) -> tuple[str, str]:
    """(Hub licence id, sentence) for a data source; unknown sources say where to look."""
    if source in DATASET_LICENCES:
        return DATASET_LICENCES[source]
    if Path(source).exists():
        return "other", "local data: its licence is the one its owner gave it; check it before sharing this model"
    return "other", f"see the dataset card of {source} for its licence"


def write_inference_settings(artifact_dir: Path, cfg: RunConfig, family: str) -> Path:
    """Write ``lorasum.json`` (prompt template, generation settings, languages) into ``artifact_dir``."""
    return write_json(Path(artifact_dir) / SETTINGS_FILE, {
        "base_model": cfg.model.name,
        "family": family,
        "prompt_template": cfg.model.prompt_template,
        "generation": cfg.generation.model_dump(mode="json"),
        "languages": cfg.data.languages,
    })


def inference_settings(model: str, adapter: str | None = None) -> tuple[str, GenerationConfig]:
    """(prompt template, generation settings) for a run folder, adapter or model folder.

    A run folder's ``config.yaml`` comes first, then ``lorasum.json`` in the adapter, then
    in the model folder; with none of them, lorasum's defaults (XL-Sum's decoding).
    """
    run_cfg = Path(model) / "config.yaml"
    if run_cfg.is_file():
        cfg = load_run_config(run_cfg)
        return cfg.model.prompt_template, cfg.generation
    for folder in (adapter, model):
        path = Path(folder) / SETTINGS_FILE if folder else None
        if path is not None and path.is_file():
            try:
                saved = json.loads(path.read_text(encoding="utf-8"))
                return saved["prompt_template"], GenerationConfig.model_validate(saved["generation"])
            except (ValueError, KeyError, TypeError) as err:
                raise LorasumError(f"{path}: not a lorasum settings file ({err}); delete it to use the defaults") \
                    from None
    default = RunConfig()
    return default.model.prompt_template, default.generation


def front_matter(cfg: RunConfig, metrics: dict, method_name: str, family: str) -> str:
    """The Hub card's YAML header (between ``---`` lines)."""
    licence, _ = dataset_licence(cfg.data.source)
    overall = metrics["rouge"].get("overall", {})
    results = [{"type": key, "name": name, "value": round(float(overall[key]["mean"]), 2)}
               for key, name in (("rouge1", "ROUGE-1"), ("rouge2", "ROUGE-2"), ("rougeL", "ROUGE-L"))
               if isinstance(overall.get(key), dict) and "mean" in overall[key]]
    meta = {
        "language": sorted({lang.split("-")[0] for lang in cfg.data.languages + cfg.data.eval_languages}),
        "license": licence,
        "base_model": cfg.model.name,
        "library_name": "peft" if method_name == "lora" else "transformers",
        "pipeline_tag": "text-generation" if family == "decoder" else "summarization",
        "tags": ["summarization", "lorasum", method_name] + (["lora"] if method_name == "lora" else []),
        "datasets": [cfg.data.source] if not Path(cfg.data.source).exists() else [],
        "model-index": [{"name": f"{cfg.model.name}-{method_name}-summarization", "results": [{
            "task": {"type": "summarization", "name": "Summarization"},
            "dataset": {"name": cfg.data.source if not Path(cfg.data.source).exists() else "local data",
                        "type": cfg.data.source if not Path(cfg.data.source).exists() else "local"},
            "metrics": results,
        }]}] if results else [],
    }
    meta = {k: v for k, v in meta.items() if v != []}
    return "---\n" + yaml.safe_dump(meta, sort_keys=False, allow_unicode=True) + "---\n"


def usage_for_family(usage: str, family: str) -> str:
    """A method's usage code with the model class of the family (decoder-only: causal LM)."""
    if family == "decoder":
        return usage.replace("AutoModelForSeq2SeqLM", "AutoModelForCausalLM")
    return usage
