"""Learning curves of one or more runs, drawn from their ``metrics.jsonl`` to a PNG."""

from __future__ import annotations

import json
from pathlib import Path

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
