"""Regenerate ``docs/benchmarks.md`` and its pictures from a run of ``pytest benchmarks/``.

Usage (from the repository root)::

    python benchmarks/report.py                   # run the benchmarks, then write the page
    python benchmarks/report.py --json RESULTS --artifacts DIR   # write it from an earlier run

The first form runs ``python -m pytest benchmarks/ --benchmark-json=... --bench-artifacts=...``
(on the CPU when no CUDA device is present, so the ``gpu`` benchmarks run at their small
CPU size), then reads the figures from the JSON's ``extra_info`` and the samples from the
artifacts folder, and writes ``docs/benchmarks.md`` and ``docs/img/benchmarks/*.png``.
No figure is written that the run did not measure.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make the benchmarks package importable
    sys.path.insert(0, str(ROOT))

from benchmarks import row_sections  # noqa: E402
from benchmarks.iteration_report import iteration_section  # noqa: E402
from benchmarks.likelihood_report import likelihood_section  # noqa: E402
from benchmarks.quality_report import (  # noqa: E402
    BASELINES,
    TOY_SETS,
    digits_section,
    rows_of,
    toy_section,
)

TARGET_RATIO = 1.10
# Panels of the sample pictures (the names of the saved samples).
COLUMNS = {
    "reference": "data (floor)",
    "coopflow": "CoopFlow",
    "coopflow_proposals": "CoopFlow, flow proposals",
    **BASELINES,
}
VARIANTS = ("float32", "bfloat16", "compile")
SAMPLERS = ("langevin", "mala", "hmc")


def run_benchmarks(json_path: Path, artifacts: Path, device: str) -> tuple[str, float]:
    """Run ``pytest benchmarks/``; the command line (as shown on the page) and its
    wall-clock seconds."""
    options = ["benchmarks/", "-q", "-p", "no:cacheprovider", f"--device={device}"]
    outputs = [f"--benchmark-json={json_path}", f"--bench-artifacts={artifacts}"]
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", *options, *outputs], cwd=ROOT, check=False
    )
    elapsed = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"pytest benchmarks/ failed (exit status {completed.returncode}).")
    shown = [
        "python",
        "-m",
        "pytest",
        *options,
        "--benchmark-json=RESULTS",
        "--bench-artifacts=DIR",
    ]
    return shlex.join(shown), elapsed


def fmt(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` significant digits (whole numbers from ``10**digits`` on);
    "n/a" for ``None``.

    Examples:
        >>> fmt(0.012345), fmt(1234.5), fmt(None)
        ('0.0123', '1,234', 'n/a')
    """
    if value is None:
        return "n/a"
    if abs(value) >= 10**digits:
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def table(header: Iterable[str], rows: Iterable[Iterable[str]]) -> list[str]:
    """A Markdown table.

    Examples:
        >>> table(["a", "b"], [["1", "2"]])
        ['| a | b |', '|---|---|', '| 1 | 2 |']
    """
    header = list(header)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def by_kind(benchmarks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [b["extra_info"] for b in benchmarks if b["extra_info"].get("kind") == kind]


def machine_section(results: dict[str, Any], command: str, elapsed: float | None) -> list[str]:
    facts = results["machine_info"]["coopkit"]
    threads = facts["torch_threads"]
    omp = facts["omp_num_threads"]
    lines = [
        f"- **Date**: {results['datetime'][:19].replace('T', ' ')} UTC",
        f"- **CPU**: {facts['cpu_model']}, {facts['logical_cores']} logical cores; torch used "
        f"{threads} thread{'s' * (threads != 1)} (OMP_NUM_THREADS={omp or 'unset'})",
        f"- **GPU**: {facts['gpu'] or 'none'}; benchmarks ran on `{facts['device']}`",
        f"- **Software**: torch {facts['torch']}, Python {facts['python']}",
        f"- **Command**: {command}" + (f", {elapsed / 60:.1f} min in all" if elapsed else ""),
    ]
    return lines


def overhead_section(rows: list[dict[str, Any]], device: str) -> list[str]:
    order = {name: i for i, name in enumerate(SAMPLERS)}
    rows = sorted(rows, key=lambda r: (r["parameters"], order.get(r["sampler"], 9)))
    body = [
        [
            f"`{r['net']}`",
            f"{r['parameters']:,}",
            str(r["batch"]),
            r["sampler"],
            str(r["gradient_evaluations"]),
            fmt(1e3 * r["sampler_s"]),
            fmt(1e3 * r["floor_s"]),
            f"{r['ratio']:.2f}",
            "yes" if r["ratio"] <= TARGET_RATIO else "**no**",
        ]
        for r in rows
    ]
    header = [
        "energy net",
        "parameters",
        "batch",
        "sampler",
        "gradient evaluations",
        "sampler (ms)",
        "floor (ms)",
        "ratio",
        f"≤ {TARGET_RATIO:.2f}?",
    ]
    lines = table(header, body)
    if device == "cpu":
        lines += [
            "",
            "The rows marked `(small)` are the CPU stand-in of the GPU benchmark; the paper's "
            "32x32x3 net (`n_f=128`, batch 64) on a GPU is **still to be measured**: no "
            "CUDA device was available for this run.",
        ]
    return lines


def throughput_section(
    sample: list[dict[str, Any]], train: list[dict[str, Any]], recon: list[dict[str, Any]]
) -> list[str]:
    if not sample:
        return ["No throughput benchmark ran (no CUDA device, and `--device cpu` not given)."]
    first = sample[0]
    c, h, w = first["event_shape"]
    flow = ", ".join(f"{k}={v}" for k, v in first["flow_params"].items())
    lines = [
        f"Size: **{first['scale']}**: {h}x{w}x{c} images, `conv` energy `n_f={first['n_f']}` "
        f"({first['energy_parameters']:,} parameters), `glow` flow ({flow}; "
        f"{first['flow_parameters']:,} parameters), T = 30 Langevin steps, device "
        f"`{first['device']}` ({first['device_name']}).",
        "",
    ]
    kinds = {"sample": sample, "train": train, "recon": recon}
    by_variant = {kind: {r["variant"]: r for r in rows} for kind, rows in kinds.items()}
    body = []
    for variant in VARIANTS:
        s = by_variant["sample"].get(variant)
        t = by_variant["train"].get(variant)
        r = by_variant["recon"].get(variant)
        body.append(
            [
                variant,
                fmt(s["images_per_s"]) if s else "n/a",
                fmt(t["seconds_per_iteration"]) if t else "n/a",
                fmt(t["peak_memory_mib"]) if t else "n/a",
                fmt(r["seconds"]) if r else "n/a (reconstruct runs uncompiled)",
                fmt(r["peak_memory_mib"]) if r else "n/a",
            ]
        )
    recon_size = (
        f"{recon[0]['images']} images, {recon[0]['reconstruct_iter']} steps" if recon else ""
    )
    header = [
        "variant",
        f"`sample()` images/s ({first['images']} per call)",
        f"training iteration (s, batch {train[0]['batch'] if train else 28})",
        "peak memory, training (MiB)",
        f"`reconstruct` (s, {recon_size})",
        "peak memory, reconstruct (MiB)",
    ]
    return lines + table(header, body)


def preset_section(rows: list[dict[str, Any]]) -> list[str]:
    """``test_preset_training_and_sampling``: the CIFAR-10 preset per variant."""
    if not rows:
        return ["No preset benchmark ran."]
    body = [
        [
            r["variant"],
            r["size"],
            r["device_name"],
            f"{r['flow_parameters']:,} / {r['energy_parameters']:,}",
            f"{r['batch']}, T = {r['langevin_steps']}",
            fmt(r["seconds_per_iteration"]),
            fmt(r["images_per_s"]),
            "n/a" if r["peak_memory_mib"] is None else fmt(r["peak_memory_mib"]),
        ]
        for r in sorted(rows, key=lambda r: VARIANTS.index(r["variant"]))
    ]
    header = [
        "variant",
        "size",
        "device",
        "parameters (flow / EBM)",
        "batch, Langevin steps",
        "s / iteration",
        "`sample()` images/s",
        "peak memory (MiB)",
    ]
    return table(header, body)


def draw_pictures(artifacts: Path, images: Path, rows: list[dict[str, Any]]) -> list[str]:
    """One PNG per data set with a panel per method; the Markdown that shows them."""
    from coopkit.plots import save_panels

    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for dataset in [d for d in (*TOY_SETS, "digits") if any(r["dataset"] == d for r in rows)]:
        prefix = "digits" if dataset == "digits" else f"toy-{dataset}"
        titles = {**COLUMNS, "reference": "training data"}
        files = {title: artifacts / f"{prefix}-{column}.npy" for column, title in titles.items()}
        if not all(file.is_file() for file in files.values()):
            continue
        shown = 64 if dataset == "digits" else None
        panels = [(title, np.load(file)[:shown]) for title, file in files.items()]
        name = f"{prefix}.png"
        value_range = (0.0, 16.0) if dataset == "digits" else None
        save_panels(images / name, panels, value_range)
        lines += [f"![{dataset}: samples per method](img/benchmarks/{name})", ""]
    return lines


def quality_section(
    toy: list[dict[str, Any]], digits: list[dict[str, Any]], pictures: list[str]
) -> list[str]:
    return [*toy_section(toy), "", *digits_section(digits), "", "### Samples", "", *pictures]


def render(
    results: dict[str, Any], command: str, elapsed: float | None, pictures: list[str]
) -> str:
    benchmarks = results["benchmarks"]
    device = results["machine_info"]["coopkit"]["device"]
    gpu_missing = device == "cpu"
    lines = [
        "# Benchmarks",
        "",
        "<!-- Generated by `python benchmarks/report.py`; edit that script, not this page. -->",
        "",
        "Speed and sample quality of coopkit, measured by `pytest benchmarks/` "
        "(pytest-benchmark) in one run. Every figure below comes from that run; "
        "`python benchmarks/report.py` runs it again and rewrites this page and its pictures.",
        "",
        "## The run",
        "",
        *machine_section(results, command, elapsed),
        "",
        "How to run the benchmarks yourself:",
        "",
        "```bash",
        "pytest benchmarks/                      # all of it; gpu benchmarks need CUDA",
        "pytest benchmarks/ --device cpu         # gpu benchmarks on the CPU, small size",
        "pytest benchmarks/ --benchmark-disable  # smoke test: each once, tiny sizes",
        "python benchmarks/report.py             # run and rewrite this page",
        "```",
        "",
        "`COOPKIT_BENCH_DEVICE=cpu` is the same as `--device cpu`. Benchmarks marked `gpu` "
        "are skipped when there is no CUDA device unless the CPU is asked for. On a CPU "
        "shared with other jobs, `OMP_NUM_THREADS=1` avoids the thread oversubscription "
        "that otherwise multiplies the run time several times over.",
        "",
        "## Sampler overhead",
        "",
        "Time of one sampler call divided by the time of as many plain forward and "
        "input-gradient backward passes of the same energy net as the call evaluates "
        "gradients (the floor). Target: at most 1.10. `langevin`: T = 30 steps; `mala`: "
        "29 transitions (30 gradients with the one at the start); `hmc` (plugin "
        "`coopkit-hmc`, its defaults): 3 transitions of 10 leapfrog steps (31 gradients). "
        "The two are timed alternately, after warm-up, and the medians compared.",
        "",
        *overhead_section(by_kind(benchmarks, "overhead"), device),
        "",
        "## Training iteration overhead",
        "",
        *iteration_section(by_kind(benchmarks, "iteration")),
        "",
        "## Throughput",
        "",
        "`sample()` images per second, seconds per cooperative training iteration at "
        "batch 28, and peak GPU memory (`torch.cuda.max_memory_allocated`) of a training "
        "iteration and of `reconstruct`; in float32, with bfloat16 autocast of the energy "
        'net (`precision="bfloat16"`) and with `compile=True`.',
        "",
    ]
    if gpu_missing:
        lines += [
            "**GPU figures at the paper's sizes (32x32x3, `n_f=128`, Glow): still to be "
            "taken.** No CUDA device was available for this run; run "
            "`python benchmarks/report.py` on a GPU machine to fill them in. Below, the same "
            "benchmarks on the CPU at a small size, reported as such (peak memory is only "
            "measured on CUDA).",
            "",
        ]
    lines += throughput_section(
        *(by_kind(benchmarks, kind) for kind in ("sample", "train", "reconstruct"))
    )
    lines += [
        "",
        "## The CIFAR-10 preset",
        "",
        '`CoopFlow.from_preset("cifar10-T30")` (`benchmarks/test_preset.py`): seconds per '
        "training iteration, `sample()` images per second and peak GPU memory of an "
        "iteration, on random 32x32x3 images (or `$COOPKIT_BENCH_DATA`). On a GPU the "
        "preset runs at the paper's size; on a CPU at a small size, reported as such.",
        "",
        *preset_section(by_kind(benchmarks, "preset")),
    ]
    if gpu_missing:
        lines += [
            "",
            "**The preset at the paper's size on a GPU is still to be measured**: no CUDA "
            "device was available for this run.",
        ]
    lines += row_sections.page_lines()
    lines += ["", "## Sample quality, same iteration budget", ""]
    toy, digits = rows_of(benchmarks, "toy_quality"), rows_of(benchmarks, "digits_quality")
    lines += quality_section(toy, digits, pictures)
    lines += ["", "## Likelihood of the digits", ""]
    lines += likelihood_section(digits, by_kind(benchmarks, "ais"))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--json",
        type=Path,
        help="results of an earlier run (skip running); a run.json next to it, written by "
        "--keep, supplies the command line and duration",
    )
    parser.add_argument("--artifacts", type=Path, help="samples folder of that run")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--images", type=Path, default=ROOT / "docs" / "img" / "benchmarks")
    parser.add_argument(
        "--keep", type=Path, help="folder to keep the run's results.json and samples/ in"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.json is None:
            folder = args.keep or Path(scratch)
            folder.mkdir(parents=True, exist_ok=True)
            json_path, artifacts = folder / "results.json", folder / "samples"
            pytest_command, elapsed = run_benchmarks(json_path, artifacts, args.device)
            threads = os.environ.get("OMP_NUM_THREADS")
            prefix = f"OMP_NUM_THREADS={threads} " if threads else ""
            command = f"`{prefix}python benchmarks/report.py`, which runs `{pytest_command}`"
            run = {"command": command, "elapsed": elapsed}
            (folder / "run.json").write_text(json.dumps(run))
        else:
            if args.artifacts is None:
                parser.error("--json needs --artifacts, the samples folder of the same run")
            json_path, artifacts = args.json, args.artifacts
            run_file = json_path.parent / "run.json"
            run = (
                json.loads(run_file.read_text())
                if run_file.is_file()
                else {"command": f"`pytest benchmarks/ --benchmark-json={json_path.name}`"}
            )
            command, elapsed = run["command"], run.get("elapsed")
        results = json.loads(json_path.read_text())
        rows = [*rows_of(results["benchmarks"], "toy_quality")]
        rows += rows_of(results["benchmarks"], "digits_quality")
        pictures = draw_pictures(artifacts, args.images, rows)
        args.out.write_text(render(results, command, elapsed, pictures))
    print(f"wrote {args.out} and {args.images}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
