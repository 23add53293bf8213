"""Pools the rounds of one or more GPU runs, then writes one JSON, one plot and a markdown table.

Run: ``python bench/gpu/collect.py RUN_DIR [RUN_DIR ...]``, each RUN_DIR a folder that
run_gpu_bench.sh wrote (its run.log, env.txt and gpu-*.json). Every round of every run is read back
from run.log, which holds each round's full summary (the JSON files keep only the median round's).
A model's figures are its median round over all runs; a ratio is the median, over rounds, of the
ratio between two systems measured within the same round, as in serving_bench.py. Writes
bench/results/gpu/serving-gpu.json and serving-gpu.png.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))

from serving_bench import median_run, plot, ratios  # noqa: E402

OUT = BENCH / "results" / "gpu"
COLUMNS = ("in_process", "ours", "transformers_serve")
ROUND = re.compile(
    r"\[(?P<model>[^\]]+)\] round (?P<round>\d+) c=(?P<c>\d+)\s+(?P<system>\S+)\s+(?P<summary>\{.*\})"
)


def read_run(run: Path) -> dict[str, dict[str, dict[str, list[dict]]]]:
    """model -> system -> level -> the summaries of that run's rounds, in order."""
    found: dict[str, dict[str, dict[str, list[dict]]]] = {}
    for line in (run / "run.log").read_text().splitlines():
        m = ROUND.search(line)
        if m:
            per_level = found.setdefault(m["model"], {}).setdefault(m["system"], {})
            per_level.setdefault(m["c"], []).append(ast.literal_eval(m["summary"]))
    return found


def collect(runs: list[Path]) -> dict:
    """Every run's rounds pooled per model, with serving_bench.py's figures and ratios over them."""
    first = json.loads(next(runs[0].glob("gpu-*.json")).read_text())
    results: dict = {k: first[k] for k in ("machine", "date", "max_tokens", "placement") if k in first}
    results["runs"] = []
    pooled: dict[str, dict[str, dict[str, list[dict]]]] = {}
    for run in runs:
        found = read_run(run)
        env = (run / "env.txt").read_text().strip().splitlines() if (run / "env.txt").is_file() else []
        rounds = {m: len(next(iter(next(iter(s.values())).values()))) for m, s in found.items()}
        results["runs"].append({"folder": run.name, "rounds": rounds, "environment": env})
        for model, systems in found.items():
            for system, per_level in systems.items():
                for c, summaries in per_level.items():
                    pooled.setdefault(model, {}).setdefault(system, {}).setdefault(c, []).extend(summaries)
    results["models"] = {}
    for model, systems in pooled.items():
        figures = {s: {c: median_run(rs) for c, rs in per_level.items()} for s, per_level in systems.items()}
        rounds = len(next(iter(next(iter(systems.values())).values())))
        results["models"][model] = {"rounds": rounds, "systems": figures, "ratios": ratios(figures)}
    return results


def table(results: dict) -> str:
    """Tokens/s, TTFT p50 and the ratios, one row per model and level."""
    head = "| model | rounds | streams | " + " | ".join(f"{c} tok/s" for c in COLUMNS)
    head += " | " + " | ".join(f"{c} TTFT p50 ms" for c in COLUMNS)
    head += " | ours / in-process | ours / t. serve |"
    rows = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, model in results["models"].items():
        systems, ratio = model["systems"], model["ratios"]
        for c in systems["ours"]:
            tps = [f"{systems[s][c]['tokens_per_s']:.0f}" if s in systems else "-" for s in COLUMNS]
            ttft = [f"{systems[s][c]['ttft_p50_ms']:.0f}" if s in systems else "-" for s in COLUMNS]
            r_ip = ratio.get("ours_vs_in_process", {}).get(c, float("nan"))
            r_ts = ratio.get("ours_vs_transformers_serve", {}).get(c, float("nan"))
            cells = [name, str(model["rounds"]), c, *tps, *ttft, f"{r_ip:.2f}", f"{r_ts:.2f}"]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def main() -> int:
    runs = [Path(a) for a in sys.argv[1:]] or sorted(OUT.glob("run*"))
    results = collect(runs)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "serving-gpu.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    plot(results, OUT / "serving-gpu.png")
    print(table(results))
    print(f"wrote {OUT / 'serving-gpu.json'} and serving-gpu.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
