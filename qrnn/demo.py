"""The main job: a QRNN and a parameter-matched LSTM on copying memory, compared in one table."""

from __future__ import annotations

import logging
from pathlib import Path

from qrnn.train import PRESET_DIR, Trainer, load_preset

logger = logging.getLogger(__name__)


def run_demo(run_dir: Path, time_budget: float | None = None, progress: bool = True) -> list[dict]:
    """Train both models on the ``copying`` preset (delay 10) and print the comparison.

    Each model trains for the preset's steps (4000 batches of 32 with a cosine schedule), or
    until ``time_budget`` seconds of training pass. Returns one row per model.
    """
    preset = load_preset(PRESET_DIR / "copying.toml")
    rows = []
    for kind in ("qrnn", "lstm"):
        config = preset.override(model={"model": kind}, train={"time_limit": time_budget})
        trainer = Trainer(config, run_dir / kind, progress=progress)
        print(f"training {kind} on {trainer.task.describe()}", flush=True)
        trainer.fit(
            on_epoch=lambda record, kind=kind: print(
                f"  {kind} epoch {record['epoch']}: valid loss {record['valid_loss']:.4f}, "
                f"accuracy {record['valid_accuracy']:.3f}, {record['elapsed_s']:.0f} s",
                flush=True,
            )
        )
        test = trainer.test_metrics()
        rows.append(
            {
                "model": kind,
                "parameters": trainer.summary()["parameters"]["total"],
                "cross_entropy": test["loss"],
                "memoryless": trainer.task.reference()["memoryless_loss"],
                "accuracy": test["accuracy"],
                "time_s": trainer.elapsed,
            }
        )
    print()
    print(
        f"{'model':<6} {'params':>7} {'test CE':>8} {'memoryless':>10} {'accuracy':>8} {'time':>7}"
    )
    for r in rows:
        print(
            f"{r['model']:<6} {r['parameters']:>7d} {r['cross_entropy']:>8.4f} "
            f"{r['memoryless']:>10.4f} {r['accuracy']:>8.3f} {r['time_s']:>6.0f}s"
        )
    print(f"\nruns in {run_dir} (plot them: qrnn plot {run_dir}/qrnn {run_dir}/lstm)")
    return rows
