"""The report's figures, read back through matplotlib objects, on small synthetic results tables:
axes from 0, real tick values, seed bands that are what their title says, no hidden series."""
from __future__ import annotations

import math
from itertools import combinations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from scipy import stats

from lorasum.report import plots


def _row(lang, variant, seed, shots, y, *, regime="low_data", scenario=None, train="en", level="language",
         spread=2.0, rank=None, params=None, mb=None):
    method = "full" if variant == "full" else "lora"
    return {"level": level, "regime": regime, "scenario": scenario or regime, "method": method, "variant": variant,
            "rank": rank if rank is not None else (None if method == "full" else 8), "shots": shots, "seed": seed,
            "train_langs": train, "lang": lang, "rougeL_mean": y, "rougeL_mean_lo": y - spread,
            "rougeL_mean_hi": y + spread, "trainable_params": params, "artifact_mb": mb}


def _frame(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows)
    for col in ("rank", "shots", "seed"):
        df[col] = df[col].astype("Int64")
    return df


def _low_data(seeds_en=(0, 1, 2), shots=(8, 32, 128)) -> pd.DataFrame:
    """en: several seeds (low ROUGE, so a t-interval dips below 0); fr: one seed."""
    rows = []
    for k, n in enumerate(shots):
        for s in seeds_en:
            rows.append(_row("en", "full", s, n, [1.0, 2.0, 9.0][s % 3] + 5 * k))
            rows.append(_row("en", "lora-r8-attention", s, n, [2.0, 3.0, 8.0][s % 3] + 5 * k))
        rows.append(_row("fr", "full", 0, n, 20.0 + k))
        rows.append(_row("fr", "lora-r8-attention", 0, n, 20.0 + k))  # same as full: must not hide it
    return _frame(rows)


def _transfer_and_ranks() -> pd.DataFrame:
    rows = []
    for v, y in (("full", 10.0), ("lora-r8-attention", 10.0)):
        rows.append(_row("fr", v, 0, None, y, regime="zero_shot"))
        rows.append(_row("fr", v, 0, 16, y + 4, regime="few_shot"))
        rows.append(_row("fr", v, 0, None, y + 1, regime="multi_source", train="en+de"))
    for r, y in ((4, 30.0), (8, 31.0), (16, 33.0)):
        rows.append(_row("en", f"lora-r{r}-attention", 0, 64, y, scenario="rank_ablation", rank=r))
    rows.append(_row("en", "full", 0, 64, 29.0))
    return _frame(rows)


def _efficiency(params=(1.2e6, 1.5e6, 1.8e6), mb=(1.3, 1.6, 1.9)) -> pd.DataFrame:
    """Overall rows: two scenarios with identical points, in a range narrower than a decade."""
    rows = []
    for scenario in ("low_data", "zero_shot"):
        for v, p, m, y in zip(("full", "lora-r4-attention", "lora-r8-attention"), params, mb, (30.0, 31.0, 32.0)):
            rows.append(_row("macro", v, 0, 8, y, scenario=scenario, level="overall", params=p, mb=m))
    return _frame(rows)


def _visible_axes(fig):
    return [ax for ax in fig.axes if ax.get_visible()]


def _labelled_ticks(ax, axis):
    """(value, label) of the ticks inside the view that carry a label."""
    a = ax.xaxis if axis == "x" else ax.yaxis
    lo, hi = sorted(ax.get_xlim() if axis == "x" else ax.get_ylim())
    return [(t.get_loc(), t.label1.get_text()) for t in a.get_major_ticks()
            if lo <= t.get_loc() <= hi and t.label1.get_visible() and t.label1.get_text()]


def _drawn_top(ax) -> float:
    """The highest y of every line, error bar and band drawn in ``ax``."""
    ys = [np.nanmax(line.get_ydata()) for line in ax.get_lines() if len(line.get_ydata())]
    for c in ax.collections:
        for p in c.get_paths():
            if len(p.vertices):
                ys.append(p.vertices[:, 1].max())
        ys.extend(np.asarray(c.get_offsets())[:, 1].tolist() if len(c.get_offsets()) else [])
    return float(max(ys))


def assert_readable(fig) -> None:
    """y from 0 to a little above everything drawn; ticks with values on every axis, in plain
    numbers; tick labels that do not overlap; every text inside the figure."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in _visible_axes(fig):
        lo, hi = ax.get_ylim()
        top = _drawn_top(ax)
        assert lo == 0, (ax.get_title(), lo)
        assert top <= hi <= top * 1.1 + 1e-9, (ax.get_title(), top, hi)
        for axis in ("x", "y"):
            ticks = _labelled_ticks(ax, axis)
            assert len(ticks) >= 2, (ax.get_title(), axis, ticks)
            assert not any("$" in label or "^" in label for _, label in ticks), ticks
            boxes = [t.label1.get_window_extent(renderer) for t in (ax.xaxis if axis == "x" else ax.yaxis)
                     .get_major_ticks() if t.label1.get_visible() and t.label1.get_text()]
            for a, b in combinations(boxes, 2):
                assert not a.overlaps(b), (ax.get_title(), axis, a, b)
        assert not any(type(t).__name__ == "Annotation" for t in ax.texts), "free-floating point labels"
    page = fig.bbox
    for text in fig.findobj(lambda o: hasattr(o, "get_window_extent") and hasattr(o, "get_text")):
        if text.get_visible() and text.get_text():
            box = text.get_window_extent(renderer)
            assert page.x0 - 1 <= box.x0 and box.x1 <= page.x1 + 1, text.get_text()


def test_learning_curves_are_readable_with_real_shot_ticks():
    fig = plots.learning_curves(_low_data())
    assert_readable(fig)
    for ax in _visible_axes(fig):
        assert [label for _, label in _labelled_ticks(ax, "x")] == ["8", "32", "128"]


def test_learning_curve_ticks_stay_apart_over_many_shot_counts():
    shots = tuple(2**k for k in range(4, 13))  # 16 ... 4096
    fig = plots.learning_curves(_low_data(shots=shots))
    assert_readable(fig)
    assert [label for _, label in _labelled_ticks(_visible_axes(fig)[0], "x")] == [str(s) for s in shots]


def test_seed_band_is_a_t_interval_over_seeds_and_one_seed_gets_named_bootstrap_bars():
    df = _low_data()
    fig = plots.learning_curves(df)
    en, fr = _visible_axes(fig)
    bands = [c for c in en.collections if isinstance(c, PolyCollection)]
    assert len(bands) == 2 and not en.containers
    t = stats.t.ppf(0.975, 2) / math.sqrt(3)
    full = df[(df["lang"] == "en") & (df["variant"] == "full")]
    for shots, g in full.groupby("shots"):
        mean, half = g["rougeL_mean"].mean(), g["rougeL_mean"].std(ddof=1) * t
        ys = bands[0].get_paths()[0].vertices[:, 1]
        assert min(abs(ys - (mean - half))) < 1e-9 and min(abs(ys - (mean + half))) < 1e-9, shots
    # one seed: no band, error bars from that run's bootstrap CI (y ± 2 here)
    assert not [c for c in fr.collections if isinstance(c, PolyCollection)]
    (bars, *_) = fr.containers
    seg = bars.lines[2][0].get_segments()[0]
    assert abs(seg[1][1] - seg[0][1]) == pytest.approx(4.0)
    title = " ".join(fig.get_suptitle().split())
    assert "band: 95% t-interval over seeds" in title and "bootstrap CI over test items (one seed)" in title


def test_one_seed_everywhere_draws_no_band_and_says_so():
    fig = plots.learning_curves(_low_data(seeds_en=(0,)))
    assert not [c for ax in fig.axes for c in ax.collections if isinstance(c, PolyCollection)]
    title = " ".join(fig.get_suptitle().split())
    assert "band" not in title and "bootstrap CI over test items" in title


def test_coinciding_series_are_dodged_and_styled_apart():
    fig = plots.learning_curves(_low_data())
    fr = _visible_axes(fig)[1]
    full, lora = [line for line in fr.get_lines() if not line.get_label().startswith("_")]
    assert list(full.get_ydata()) == list(lora.get_ydata())  # same values ...
    for a, b, real in zip(full.get_xdata(), lora.get_xdata(), (8, 32, 128)):
        assert a != b and a == pytest.approx(real, rel=0.1) and b == pytest.approx(real, rel=0.1)  # ... side by side
    assert full.get_marker() != lora.get_marker() and full.get_linestyle() != lora.get_linestyle()


def test_transfer_and_rank_figures_are_readable_with_real_ticks():
    df = _transfer_and_ranks()
    fig = plots.transfer(df)
    assert_readable(fig)
    (ax,) = _visible_axes(fig)
    assert [label for _, label in _labelled_ticks(ax, "x")] == ["0\n(zero-shot)", "16", "multi-source\n(en+de)"]
    full, lora = [line for line in ax.get_lines() if line.get_label() in ("full", "lora-r8-attention")]
    assert all(a != b for a, b in zip(full.get_xdata(), lora.get_xdata()))
    fig = plots.rank_ablation(df)
    assert_readable(fig)
    (ax,) = _visible_axes(fig)
    assert [label for _, label in _labelled_ticks(ax, "x")] == ["4", "8", "16"]


def test_efficiency_is_readable_on_a_narrow_range_and_shows_every_point():
    fig = plots.efficiency(_efficiency())
    assert_readable(fig)
    for ax in _visible_axes(fig):
        xs = np.concatenate([np.asarray(c.get_offsets())[:, 0] for c in ax.collections])
        assert len(xs) == 6 and len(set(np.round(xs, 9))) == 6  # the two scenarios' equal points sit apart
    assert_readable(plots.efficiency(_efficiency(params=(3e8, 8e5, 1.6e6), mb=(1100.0, 3.0, 6.0))))
    # no 1-2-5 value twice inside the range: the ticks fall back to every integer step
    tight = plots.efficiency(_efficiency(params=(3.3e6, 3.35e6, 3.4e6), mb=(3.3, 3.35, 3.4)))
    assert_readable(tight)
    assert [label for _, label in _labelled_ticks(_visible_axes(tight)[1], "x")] == ["3", "4", "5"]


def _composition() -> pd.DataFrame:
    """fr: zero-shot and uniform over three seeds, learned over one; ar: uniform and learned."""
    rows = []
    for s, y in zip((0, 1, 2), (6.0, 8.0, 13.0)):
        rows.append({**_row("fr", "lora-r8-attention", s, None, y, regime="zero_shot"), "composition": None})
        rows.append({**_row("fr", "lora-r8-attention", s, None, y + 10, regime="compose", train="en+ru"),
                     "composition": "uniform"})
    rows.append({**_row("fr", "lora-r8-attention", 0, 8, 27.0, regime="compose", train="en+ru", spread=3.0),
                 "composition": "learned"})
    for comp, y in (("uniform", 22.0), ("learned", 30.0)):
        rows.append({**_row("ar", "lora-r8-attention", 0, 8, y, regime="compose", train="en+fr"),
                     "composition": comp})
    df = _frame(rows)
    df["cell_id"] = [f"c{i}" for i in range(len(df))]
    df["parent"] = None
    return df


def test_composition_bars_are_readable_with_seed_intervals_and_name_what_is_absent():
    from lorasum.report import composition

    table = composition.comparison(_composition())
    fig = composition.figure(table)
    assert_readable(fig)
    uniform = table[(table["target"] == "fr") & (table["setting"] == "uniform")].iloc[0]
    vals = np.array([16.0, 18.0, 23.0])
    half = stats.t.ppf(0.975, 2) * vals.std(ddof=1) / math.sqrt(3)
    assert uniform["interval"] == "seeds" and uniform["lo"] == pytest.approx(vals.mean() - half)
    learned = table[(table["target"] == "fr") & (table["setting"] == "learned")].iloc[0]
    assert (learned["interval"], learned["lo"], learned["hi"]) == ("bootstrap", 24.0, 30.0)
    title = fig.texts[0].get_text() if fig.texts else fig._suptitle.get_text()
    assert "t-interval over seeds" in title and "bootstrap CI over test items" in title
    panels = {ax.get_title().splitlines()[0]: ax for ax in _visible_axes(fig)}
    assert "absent: zero-shot, few-shot)" in panels["→ ar"].get_title()
    assert "absent: few-shot)" in panels["→ fr"].get_title()
