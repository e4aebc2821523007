"""Plots of a ``bench_training.py`` JSON report: step time against n, peak memory against T.

Usage:
    python benchmarks/plot_results.py benchmarks/results.json --out benchmarks/
writes ``time_vs_n.png`` (T = 32, log scale) and ``memory_vs_T.png`` (n = 12).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot(report: dict, out: Path) -> list[Path]:
    rows = [r for r in report["results"] if "seconds" in r]
    impls = list(dict.fromkeys(r["impl"] for r in report["results"]))
    written = []

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for impl in impls:
        points = sorted((r["n"], r["seconds"]) for r in rows if r["impl"] == impl and r["T"] == 32)
        if points:
            label = impl + (" (forward only)" if any(r["forward_only"] for r in rows
                                                     if r["impl"] == impl) else "")
            axes.plot(*zip(*points, strict=True), marker="o", label=label)
    axes.set(xlabel="qubits n", ylabel="training step (s)", yscale="log",
             title=f"T = 32, B = {report['batch']}, L = {report['layers']}, one thread")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    written.append(out / "time_vs_n.png")
    figure.savefig(written[-1], dpi=120)

    figure, axes = plt.subplots(figsize=(6.4, 4.2))
    for impl in impls:
        points = sorted((r["T"], r["peak_rss_mb"]) for r in rows
                        if r["impl"] == impl and r["n"] == 12)
        if points:  # a peer measured at one T only shows as a lone marker
            axes.plot(*zip(*points, strict=True), marker="o", label=impl)
    axes.set(xlabel="sequence length T", ylabel="peak RSS of the process (MiB)", xscale="log",
             yscale="log", title=f"n = 12, B = {report['batch']}: memory of training steps")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    written.append(out / "memory_vs_T.png")
    figure.savefig(written[-1], dpi=120)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    args = parser.parse_args(argv)
    for path in plot(json.loads(args.report.read_text()), args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
