"""Tidy results table and HTML report, from synthetic run folders (fake runner)."""
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from lorasum.errors import LorasumError
from lorasum.study import run_study, study_report, study_results


@pytest.fixture(scope="module")
def finished_study(tmp_path_factory):
    import sys

    import yaml

    sys.path.insert(0, str(Path(__file__).parent))
    from fakes import SMALL_STUDY
    from fakes import fake_train_and_evaluate

    root = tmp_path_factory.mktemp("study")
    spec = root / "study.yaml"
    spec.write_text(yaml.safe_dump(SMALL_STUDY))
    run_study(spec, out_dir=root / "s", runner=fake_train_and_evaluate, progress=False)
    return root / "s"


def test_results_table_is_tidy_and_written(finished_study):
    df = study_results(finished_study)
    assert (finished_study / "results.csv").is_file() and (finished_study / "results.parquet").is_file()
    back = pd.read_parquet(finished_study / "results.parquet")
    assert len(back) == len(df)
    langs = df[df["level"] == "language"]
    assert len(langs) == 26 + 2  # the zero-shot cells score two languages each
    assert langs.groupby(["cell_id", "lang"]).size().max() == 1
    for col in ("scenario", "regime", "method", "rank", "targets", "shots", "seed", "train_langs", "lang",
                "rougeL_mean", "rougeL_mean_lo", "rougeL_mean_hi", "rougeL_mid", "rouge1_mid_hi", "n",
                "trainable_params", "artifact_mb", "train_seconds", "peak_memory_mb", "config_hash"):
        assert col in df.columns, col
    row = langs[langs["cell_id"] == "low_data/en/lora-r8-attention/shots64/seed1"].iloc[0]
    assert row["rank"] == 8 and row["shots"] == 64 and row["seed"] == 1 and row["method"] == "lora"
    assert row["rougeL_mean_lo"] < row["rougeL_mean"] < row["rougeL_mean_hi"]


def test_results_need_finished_cells(tmp_path):
    with pytest.raises(LorasumError, match="not a study folder"):
        study_results(tmp_path)
    (tmp_path / "runs").mkdir()
    with pytest.raises(LorasumError, match="no finished cell"):
        study_results(tmp_path)


def test_report_has_every_section(finished_study):
    page = study_report(finished_study, resamples=200)
    html = page.read_text()
    for key in ("learning_curves", "transfer", "rank_ablation", "efficiency"):
        assert f"id='fig-{key}'" in html
        assert (page.parent / "figures" / f"{key}.png").stat().st_size > 5000
    assert html.count("data:image/png;base64,") == 4
    assert "Every matched pair" in html and "Sample summaries" in html
    md = (page.parent / "summary.md").read_text()
    assert "![Low data" in md and "| scenario |" in md


def test_report_omits_sections_without_data(tmp_path, finished_study):
    part = tmp_path / "part"
    shutil.copytree(finished_study / "runs" / "zero_shot", part / "runs" / "zero_shot")
    html = study_report(part, resamples=100).read_text()
    assert "id='fig-transfer'" in html and "id='fig-learning_curves'" not in html
    assert "Omitted: the study has no data for this section (needs finished low_data cells)" in html
    assert "Omitted: the study has no data for this section (needs LoRA cells at two or more ranks" in html


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.mark.skipif(_chromium() is None, reason="headless Chromium is not installed")
def test_report_renders_in_headless_chromium(finished_study, tmp_path):
    page = study_report(finished_study, resamples=100)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([_chromium(), *flags, "--dump-dom", page.as_uri()], capture_output=True, text=True,
                         timeout=120).stdout
    imgs = re.findall(r"<img [^>]*src=\"data:image/png;base64,", dom)
    assert len(imgs) == 4, dom[:500]
    shot = tmp_path / "report.png"
    subprocess.run([_chromium(), *flags, "--hide-scrollbars", "--window-size=1280,2400",
                    f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file()
    from PIL import Image

    img = Image.open(shot).convert("L")
    assert img.size == (1280, 2400)
    lo, hi = img.getextrema()
    assert hi - lo > 100  # not blank
    assert sum(1 for c in img.resize((64, 120)).histogram() if c) > 20  # figures, not a flat page
