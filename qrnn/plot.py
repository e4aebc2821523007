"""Learning curves of one or more runs, drawn from their ``metrics.jsonl`` to a PNG, and the
attention weights of a translation as a heat map."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qrnn.errors import QRNNError
from qrnn.train import METRICS_FILE


def read_metrics(run_dir: Path) -> list[dict]:
    path = run_dir / METRICS_FILE
    if not path.exists():
        raise QRNNError(f"{str(run_dir)!r} has no {METRICS_FILE}: is it a run directory?")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_runs(run_dirs: list[Path], out: Path, metric: str | None = None) -> Path:
    """Loss (train and valid) and one validation metric against epochs, one line per run.

    Args:
        run_dirs: run directories written by :class:`qrnn.train.Trainer`.
        out: the PNG to write.
        metric: validation metric for the right panel (default: ``accuracy`` when logged).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = {str(d): read_metrics(d) for d in run_dirs}
    if metric is None:
        logged = set().union(*(r.keys() for rows in runs.values() for r in rows))
        metric = "accuracy" if "valid_accuracy" in logged else None
    fig, axes = plt.subplots(1, 2 if metric else 1, figsize=(11 if metric else 6, 4), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for (name, rows), color in zip(runs.items(), colors, strict=False):
        epochs = [r["epoch"] for r in rows]
        label = Path(name).name
        axes[0, 0].plot(
            epochs, [r["train_loss"] for r in rows], "--", color=color, label=f"{label} train"
        )
        axes[0, 0].plot(
            epochs, [r["valid_loss"] for r in rows], "-", color=color, label=f"{label} valid"
        )
        if metric:
            key = f"valid_{metric}"
            if any(key not in r for r in rows):
                raise QRNNError(f"run {name!r} logged no {key!r}")
            axes[0, 1].plot(epochs, [r[key] for r in rows], "-", color=color, label=label)
    axes[0, 0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[0, 0].legend(fontsize="small")
    if metric:
        axes[0, 1].set(xlabel="epoch", ylabel=metric, title=f"validation {metric}")
        axes[0, 1].legend(fontsize="small")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out


# Fonts with Japanese and Chinese glyphs, used for the labels when one is installed (e.g. the
# Debian packages fonts-noto-cjk or fonts-ipafont-gothic); DejaVu Sans has none.
CJK_FONTS = ("Noto Sans CJK JP", "Noto Sans JP", "IPAexGothic", "IPAGothic", "TakaoGothic",
             "VL Gothic", "WenQuanYi Zen Hei", "Droid Sans Fallback")


def plot_attention(
    weights: np.ndarray,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    out: Path,
    title: str | None = None,
) -> Path:
    """Heat map of a translation's attention: one row per output token, one column per source
    token, darker where the decoder looked (the scale runs from 0 to the largest weight).

    Args:
        weights: (T_out, S) attention weights, each row summing to one.
        source_tokens: the S source tokens (column labels).
        target_tokens: the output tokens (row labels); a last row beyond them is ``<eos>``.
        out: the PNG to write.
        title: a title above the map.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import font_manager

    rows, columns = weights.shape
    if columns != len(source_tokens) or rows not in (len(target_tokens), len(target_tokens) + 1):
        raise QRNNError(
            f"attention weights of shape {weights.shape} do not fit {len(target_tokens)} output "
            f"and {len(source_tokens)} source tokens: expected ({len(target_tokens)} or "
            f"{len(target_tokens) + 1}, {len(source_tokens)})"
        )
    installed = {font.name for font in font_manager.fontManager.ttflist}
    families = ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]
    labels = [*target_tokens, "<eos>"][:rows]
    with plt.rc_context({"font.family": families}):
        fig, ax = plt.subplots(figsize=(max(4.0, 1.6 + 0.32 * columns), 1.4 + 0.3 * rows))
        # the scale ends at the largest weight, so that nearly uniform attention shows its shape
        image = ax.imshow(weights, cmap="Greys", vmin=0.0, vmax=float(weights.max()),
                          aspect="auto")
        ax.set_xticks(range(columns), [t if t.strip() else "␣" for t in source_tokens])
        ax.set_yticks(range(rows), labels)
        ax.tick_params(axis="x", labelrotation=90 if max(map(len, source_tokens)) > 1 else 0)
        ax.set(xlabel="source", ylabel="output")
        if title:
            width = max(30, int(7 * fig.get_figwidth()))  # characters that fit across
            lines = [textwrap.fill(line, width) for line in title.splitlines()]
            ax.set_title("\n".join(lines), fontsize="small")
        fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=120)
        plt.close(fig)
    return out
