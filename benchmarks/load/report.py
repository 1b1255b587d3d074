"""Plots and summary of one load_multitenant.sh run: reads <run>/<label>.steps.csv, .summary.json and loadavg.log,
writes <run>/load_<label>.png (throughput and p50/p95/p99 against the offered rate), <run>/scaling.png (throughput
against the offered rate with one and with every app host, and the ceiling), <run>/summary.md, and prints the
summary.  Usage: report.py RUN_DIR
"""

from __future__ import annotations

import csv
import json
import re
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import loadlib  # noqa: E402

TITLES = {
    "app1-houses": "house list straight from lab-app1",
    "app1-ceiling": "ceiling: bare uvicorn constant on lab-app1",
}


def title(label: str) -> str:
    """A readable name of a run label (edge-2apps: the day mix through the edge with 2 app hosts)."""
    if m := re.fullmatch(r"edge-(\d+)apps", label):
        return f"day-of-use mix through the edge, {m.group(1)} app host(s)"
    return TITLES.get(label, label)


def read_steps(path: Path) -> list[dict[str, float]]:
    with open(path, newline="") as fh:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def load_average(run: Path) -> tuple[float, float, float] | None:
    """(min, mean, max) of the 1-minute load average sampled during the run, or None without samples."""
    values = []
    log = run / "loadavg.log"
    if log.exists():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2:
                values.append(float(parts[1]))
    return (min(values), sum(values) / len(values), max(values)) if values else None


def plot_run(run: Path, label: str, steps: list[dict[str, float]], summary: dict) -> Path:
    offered = [s["offered_rps"] for s in steps]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.plot(offered, [s["throughput_rps"] for s in steps], "o-", label="answered")
    ax1.plot(offered, offered, ":", color="grey", label="offered")
    ax1.set_xlabel("offered load (requests/s)")
    ax1.set_ylabel("throughput (requests/s)")
    ax1.legend()
    for q in ("p50", "p95", "p99"):
        ax2.plot(offered, [s[f"{q}_ms"] for s in steps], "o-", label=q)
    ax2.axhline(summary["limits"]["p95_ms"], color="red", linestyle="--", linewidth=1, label="p95 limit")
    ax2.set_yscale("log")
    ax2.set_xlabel("offered load (requests/s)")
    ax2.set_ylabel("latency (ms)")
    ax2.legend()
    if summary.get("knee"):
        for ax in (ax1, ax2):
            ax.axvline(summary["knee"]["offered_rps"], color="green", linestyle=":", linewidth=1)
    fig.suptitle(title(label))
    fig.tight_layout()
    out = run / f"load_{label}.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def plot_scaling(run: Path, runs: dict[str, list[dict[str, float]]], ratios: dict[int, float]) -> Path | None:
    edge = sorted((int(m.group(1)), label) for label in runs if (m := re.fullmatch(r"edge-(\d+)apps", label)))
    if not edge and "app1-ceiling" not in runs:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for n, label in edge:
        steps = runs[label]
        ax.plot([s["offered_rps"] for s in steps], [s["throughput_rps"] for s in steps], "o-", label=f"{n} app host(s)")
    for label, style in (("app1-houses", "s--"), ("app1-ceiling", "^--")):
        if label in runs:
            steps = runs[label]
            ax.plot([s["offered_rps"] for s in steps], [s["throughput_rps"] for s in steps], style, label=title(label))
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("throughput (requests/s)")
    if ratios:
        ax.set_title("scaling: " + ", ".join(f"{n} hosts x{r:.2f}" for n, r in ratios.items()))
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = run / "scaling.png"
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main() -> int:
    run = Path(sys.argv[1])
    runs, summaries = {}, {}
    for path in sorted(run.glob("*.steps.csv")):
        label = path.name.removesuffix(".steps.csv")
        runs[label] = read_steps(path)
        summaries[label] = json.loads((run / f"{label}.summary.json").read_text())
    lines = [
        "| run | knee: offered / answered | p50 / p95 / p99 at the knee | highest throughput | stopped | leaks |",
        "|---|---|---|---|---|---|",
    ]
    for label, steps in runs.items():
        s = summaries[label]
        # Judged again from the step table with the current rules (loadlib.row_meets), so older runs compare.
        k = loadlib.knee_row(steps)
        s["knee"] = dict(k) if k else None
        knee = f"{k['offered_rps']:.0f} / {k['throughput_rps']:.1f} req/s" if k else "below the first step"
        lat = f"{k['p50_ms']:.0f} / {k['p95_ms']:.0f} / {k['p99_ms']:.0f} ms" if k else "-"
        lines.append(
            f"| {title(label)} | {knee} | {lat} | {s['max_throughput_rps']:.1f} req/s | {s['stop_reason']} "
            f"| {s['leak_count']} |"
        )
        if steps:
            plot_run(run, label, steps, s)
    # Scaling: the highest throughput with n app hosts over the same with the fewest.
    best = {
        int(m.group(1)): summaries[label]["max_throughput_rps"]
        for label in runs
        if (m := re.fullmatch(r"edge-(\d+)apps", label))
    }
    ratios = loadlib.scaling_ratio(best) if len(best) > 1 and min(best.values()) > 0 else {}
    plot_scaling(run, runs, ratios)
    if ratios:
        lines.append("")
        lines.append(
            "Scaling (highest throughput, day mix through the edge): "
            + ", ".join(f"{n} app host(s) {best[n]:.1f} req/s (x{r:.2f})" for n, r in ratios.items())
        )
    if "app1-houses" in summaries and "app1-ceiling" in summaries:
        h, c = summaries["app1-houses"]["max_throughput_rps"], summaries["app1-ceiling"]["max_throughput_rps"]
        if c > 0:
            lines.append(f"House list / ceiling on lab-app1 (highest throughputs): {h:.1f} / {c:.1f} = {h / c:.2f}")
    if (conditions := run / "conditions.txt").exists():
        lines.append(conditions.read_text().strip())
    if la := load_average(run):
        lines.append(f"Load average (1 min) during the run: min {la[0]:.1f}, mean {la[1]:.1f}, max {la[2]:.1f}")
    text = "\n".join(lines) + "\n"
    (run / "summary.md").write_text(text)
    print(text, end="")
    print(f"plots: {', '.join(p.name for p in sorted(run.glob('*.png')))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
