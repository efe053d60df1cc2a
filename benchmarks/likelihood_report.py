"""The likelihood part of ``docs/benchmarks.md``: held-out bits per dimension of the
digits, from ``test_digits_quality``'s rows, and the cost of AIS, from ``test_ais_cost``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from benchmarks.quality_report import cell
from coopkit.inference import trusted

# (method, estimate, title): the rows of the likelihood table.
ESTIMATES = (
    ("flow_alone", "flow", "flow alone: its flow (exact)"),
    ("coopflow", "flow", "CoopFlow: its flow (exact)"),
    ("coopflow", "importance", "CoopFlow: its EBM, log Z by importance sampling"),
    ("coopflow", "ais", "CoopFlow: its EBM, log Z by AIS"),
)


def estimate_row(found: Sequence[dict[str, Any]], title: str) -> list[str]:
    """One table row from the per-seed records of one estimate; its standard error reads
    "unreliable" when any seed's estimate rests on too few draws
    (:func:`coopkit.inference.trusted`), because its error bar is then not true.

    Examples:
        >>> estimate_row([{"bpd": 2.0, "seconds": 0.1}, {"bpd": 3.0, "seconds": 0.1}], "f")
        ['f', '2.50 ± 0.71', 'exact', '–', '0.1 ± 0']
        >>> row = {"bpd": 3.3, "se": 0.02, "ess": 1.0, "n_samples": 4096, "seconds": 1.0}
        >>> estimate_row([row], "EBM")[2:4]
        ['unreliable', '1 ± 0 of 4096']
    """
    first = found[0]
    se = cell([f["se"] for f in found]) if "se" in first else "exact"
    if "ess" in first and not all(trusted(f["ess"], f["n_samples"]) for f in found):
        se = "unreliable"
    ess = f"{cell([f['ess'] for f in found])} of {first['n_samples']}" if "ess" in first else "–"
    return [
        title,
        cell([f["bpd"] for f in found]),
        se,
        ess,
        cell([f["seconds"] for f in found]),
    ]


def likelihood_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The held-out bits-per-dimension table (mean ± sd over seeds)."""
    header = ["model", "bits/dim", "standard error (bits/dim)", "ESS", "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, key, title in ESTIMATES:
        found = [
            r["likelihood"][key]
            for r in rows
            if r["method"] == method and key in r.get("likelihood", {})
        ]
        if found:
            lines.append("| " + " | ".join(estimate_row(found, title)) + " |")
    return lines


def likelihood_section(
    digits: Sequence[dict[str, Any]], ais: Sequence[dict[str, Any]]
) -> list[str]:
    """The section: the digits table and the AIS cost."""
    if not any("likelihood" in r for r in digits):
        return ["No digits likelihood was measured."]
    ais_run = next(
        (r["likelihood"]["ais"] for r in digits if "ais" in r.get("likelihood", {})), None
    )
    lines = [
        "Held-out negative log-likelihood of the 540 held-out digits in bits per dimension "
        "(`CoopFlow.bits_per_dim`; lower is better; a uniform model of the 17 levels scores "
        "log2 17 = 4.09), mean ± sd over the seeds of the digits quality runs above, with the "
        "seconds each estimate took on this machine. The EBM's figures inherit the error of "
        "its log Z; the ESS says how many of the draws or chains carried the estimate "
        "(see [Likelihood](guide/likelihood.md#reading-the-standard-error-and-the-ess)).",
        "",
        *likelihood_table(digits),
    ]
    if ais_run is not None:
        lines += [
            "",
            f"AIS: {ais_run['n_temperatures']} temperatures, {ais_run['n_samples']} chains, "
            "MALA with one step per temperature and its step size adapted between "
            'temperatures (the estimator\'s `log_partition="ais"` defaults). Both '
            "estimators' log Z is, in expectation, too low (the log of an unbiased estimate "
            "of Z, by Jensen's inequality), and more so the smaller the ESS: the EBM's "
            "bits/dim above are, in expectation, lower bounds on its true figure.",
        ]
    lines += ["", "### The cost of AIS", "", *ais_cost_table(ais)]
    return lines


def ais_cost_table(rows: Sequence[dict[str, Any]]) -> list[str]:
    """``test_ais_cost``: one AIS run against its sampler calls alone."""
    if not rows:
        return ["No AIS cost benchmark ran."]
    header = ["temperatures × chains", "parameters", "AIS (s)", "sampler calls alone (s)", "ratio"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [
            f"{r['temperatures']} × {r['chains']}",
            f"{r['parameters']:,}",
            f"{r['ais_s']:.1f}",
            f"{r['floor_s']:.1f}",
            f"{r['ratio']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return [
        "One AIS run on the digits with the demo's nets (`benchmarks/test_ais.py`) beside "
        "the same number of sampler calls alone, on "
        f"{rows[0]['threads']} CPU thread(s) of this machine. What AIS adds per temperature "
        "is one forward pass of the flow and the energy net (the log-ratio at each chain's "
        "new state) and the weights' update.",
        "",
        *lines,
    ]
