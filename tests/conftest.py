import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
if (SHARED_DATA / "nltk_data").is_dir():
    os.environ.setdefault("NLTK_DATA", str(SHARED_DATA / "nltk_data"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# tiny models: one thread is as fast, and immune to OpenMP spinning when cores are shared
os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_mt5(tmp_path_factory) -> Path:
    from lorasum.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-mt5", "mt5", d_model=32, layers=1)


@pytest.fixture(scope="session")
def tiny_bart(tmp_path_factory) -> Path:
    from lorasum.models.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny-bart", "bart", d_model=32, layers=1)


def _tiny_run_config(model_dir, method="lora", **overrides):
    """A run config small enough to train in seconds on the embedded demo data."""
    from lorasum.config import parse_run_config
    from lorasum.demo import DATA

    cfg = {
        "model": str(model_dir),
        "data": {"source": str(DATA), "languages": ["en", "ru"], "train_examples": 8, "validation_examples": 2,
                 "test_examples": 3},
        "method": {"name": "lora", "r": 4, "alpha": 8, "dropout": 0.0} if method == "lora" else {"name": "full"},
        "training": {"max_steps": 4, "batch_size": 4, "lr": 1e-2, "checkpoint_every": 2, "seed": 1,
                     "max_source_length": 64, "max_target_length": 32, "label_smoothing": 0.1},
        "generation": {"num_beams": 2, "max_source_length": 64, "max_target_length": 8, "batch_size": 4},
    }
    for key, value in overrides.items():
        section, _, field = key.partition("__")
        if field:
            cfg[section][field] = value
        else:
            cfg[section] = value
    return parse_run_config(cfg, "test")


@pytest.fixture(scope="session")
def tiny_run_config():
    """Build a seconds-long run config: ``tiny_run_config(model_dir, "lora"|"full", section__field=value)``."""
    return _tiny_run_config


@pytest.fixture(scope="session")
def tiny_sp_mt5(tmp_path_factory) -> Path:
    """A tiny random mT5 with a real SentencePiece vocabulary (T5Tokenizer), built from a few sentences."""
    from lorasum.models.tiny import build_tiny_model, train_sentencepiece

    root = tmp_path_factory.mktemp("sp-models")
    sentences = [
        "The council of Leeds has approved a plan to rebuild the old bridge.",
        "Police in Cardiff closed the area around the museum on Monday after a fire broke out.",
        "La mairie de Lyon a validé un projet pour rénover le vieux pont.",
        "Власти в Казани одобрили план реконструкции старого моста.",
        "وافق مجلس مدينة عمّان على خطة لإعادة بناء الجسر القديم.",
        "成都市政府批准了重建旧大桥的计划。",
    ]
    train_sentencepiece(sentences * 4, root / "tokenizer", vocab_size=150, extra_ids=8, hard_vocab_limit=False)
    return build_tiny_model(root / "tiny-sp-mt5", "mt5", d_model=32, layers=1, tokenizer_dir=root / "tokenizer")
