"""The model card (README.md) written into every run folder and into its artifact folder.

The artifact's copy replaces peft's blank template README, so the folder a user pushes to
the Hub carries the results, the data licence and the usage code.
"""
from __future__ import annotations

from pathlib import Path

from lorasum.artifact import dataset_licence, front_matter, usage_for_family, write_inference_settings
from lorasum.config import RunConfig
from lorasum.io import atomic_write_text
from lorasum.methods import method_of
from lorasum.metrics.stats import summary_rows


def _fmt(s: dict | None, key: str = "mean") -> str:
    if not s:
        return "-"
    ci = s.get(f"{key}_ci")
    return f"{s[key]:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")


def write_model_card(run_dir: Path, cfg: RunConfig, metrics: dict) -> Path:
    eff = metrics["efficiency"]
    rows = []
    for lang, m in summary_rows(metrics["rouge"]):
        rows.append(f"| {lang} | {m.get('n', '-')} | {_fmt(m.get('rouge1'))} | {_fmt(m.get('rouge2'))} "
                    f"| {_fmt(m.get('rougeL'))} |")
    method = method_of(cfg.method).describe(cfg.method)
    fam = metrics["run"].get("family", "")
    usage = "```python\n" + usage_for_family(method_of(cfg.method).usage(cfg.method, cfg.model.name), fam) + "```\n"
    if fam == "decoder":
        usage += ("\nThe model reads each article through this prompt ({lang_name} and {text} filled in):\n\n"
                  "```text\n" + cfg.model.prompt_template + "\n```\n")
    _, licence = dataset_licence(cfg.data.source)
    t = cfg.training
    text = front_matter(cfg, metrics, cfg.method.name, fam) + f"""
# Summarization model: {cfg.model.name} + {method}

Trained with lorasum on {cfg.data.source} ({', '.join(cfg.data.languages)}); scored on
{', '.join(cfg.data.eval_languages)}.

## Results (test split, ROUGE F x100, mean with 95% bootstrap CI)

"macro avg" is the mean of the language means (CI resampled within each language);
"pooled" weighs every test item the same.

| language | n | ROUGE-1 | ROUGE-2 | ROUGE-L |
|---|---|---|---|---|
{chr(10).join(rows)}

Trainable parameters: {eff['trainable_params']:,} of {eff['total_params']:,} ({100 * eff['trainable_share']:.3f}%);
artifact weights {eff['artifact_mb']:.2f} MB; {eff['train_steps']} steps in {eff['train_seconds']:.1f} s
({eff['train_tokens_per_second']:,.0f} tokens/s).

## Training

epochs {t.epochs}, max steps {t.max_steps}, batch {t.batch_size} x {t.grad_accum}, lr {t.lr} ({t.schedule},
warmup {t.warmup_ratio}), optimizer {t.optimizer}, label smoothing {t.label_smoothing}, precision
{t.precision}, seed {t.seed}, {cfg.data.train_examples or 'all'} training examples per language (sample seed
{cfg.data.sample_seed}). The full resolved configuration is in `config.yaml`.

## Use

{usage}
## Data licence

{cfg.data.source}: {licence}.
"""
    artifact = Path(run_dir) / method_of(cfg.method).artifact_name
    if artifact.is_dir():
        write_inference_settings(artifact, cfg, fam)
        atomic_write_text(artifact / "README.md", text)
    return atomic_write_text(Path(run_dir) / "README.md", text)
