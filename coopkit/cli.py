"""The ``coopkit`` command: ``fit``, ``sample``, ``evaluate``, ``plugins`` and ``demo``.

``coopkit demo`` trains CoopFlow on scikit-learn's 8x8 digits (no download) and writes
pictures of what it learned; ``coopkit demo --data moons`` does the same on two moons.
Bad input ends the command with exit status 2 and a one-line reason on stderr.
"""

from __future__ import annotations

import argparse
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from coopkit.cli_params import add_parameter_flags, literal, parameter_values
from coopkit.demo import DEMOS

BUILT_IN_DATA = ("digits", "eight_gaussians", "moons", "circles", "checkerboard")
TOY_SIZE = 2000
# `coopkit evaluate` runs a classifier two-sample test on data with at most this many
# features (tables, and images as small as the 8x8 digits).
C2ST_MAX_FEATURES = 256


def load_data(source: str, key: str | None = None) -> tuple[np.ndarray, dict[str, Any]]:
    """The array named by ``source`` (a ``.npy``/``.npz`` file or a built-in name) and
    the estimator parameters it implies (``data_range`` for the digits)."""
    if source in BUILT_IN_DATA:
        from coopkit import datasets

        if source == "digits":
            return datasets.digits()[0], {"data_range": (0, 16)}
        return datasets.load_toy(source, TOY_SIZE, random_state=0), {}
    path = Path(source)
    if path.suffix not in (".npy", ".npz"):
        raise ValueError(
            f"DATA must be a .npy or .npz file or one of {', '.join(BUILT_IN_DATA)}; "
            f"got {source!r}."
        )
    if not path.is_file():
        raise FileNotFoundError(f"No such data file: {source}")
    try:
        loaded = np.load(path, mmap_mode="r" if path.suffix == ".npy" else None, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(
            f"{source} is not a readable {path.suffix} file: it is corrupt or truncated, or "
            f"holds Python objects rather than numbers ({type(exc).__name__} while reading it)."
        ) from None
    if path.suffix == ".npy":
        return loaded, {}
    names = list(loaded.files)
    name = key or names[0]
    if name not in names:
        raise ValueError(f"{source} has no array {name!r}; it holds {', '.join(names)}.")
    return loaded[name], {}


def parse_assignments(pairs: Sequence[str], option: str) -> dict[str, Any]:
    """``["a=1", "b=(0, 1)"]`` as ``{"a": 1, "b": (0, 1)}`` (values as Python literals)."""
    parsed = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"{option} takes NAME=VALUE; got {pair!r}.")
        parsed[name] = literal(value)
    return parsed


def _fit(args: argparse.Namespace) -> int:
    from coopkit import CoopFlow
    from coopkit.distributed import init_from_environment
    from coopkit.plots import save_training_curves

    world = init_from_environment()

    X, implied = load_data(args.data, args.key)
    parts = {part: getattr(args, part) for part in ("flow", "energy", "sampler")}
    params: dict[str, Any] = {
        **implied,
        **{part: spec for part, spec in parts.items() if spec is not None},
        **parameter_values(args, CoopFlow),
        "random_state": args.seed,
        "verbose": not args.quiet and world.is_main,
    }
    for part in ("flow", "energy", "sampler"):
        pairs = getattr(args, f"{part}_param")
        if pairs:
            params[f"{part}_params"] = parse_assignments(pairs, f"--{part}-param")
    if args.preset is not None:
        model = CoopFlow.from_preset(args.preset, **params)
    else:
        model = CoopFlow(**params)
    if isinstance(model.batch_size, int):
        model.set_params(batch_size=min(model.batch_size, len(X)))
    model.fit(X, resume=args.resume)
    if world.is_main:
        out = Path(args.out)
        print(f"model: {model.save(out / 'model.coopkit')}")
        print(f"training: {save_training_curves(out / 'training.png', model.history_)}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    from coopkit import CoopFlow
    from coopkit.files import atomic_path
    from coopkit.plots import save_panels

    model = CoopFlow.load(args.model)
    samples = model.sample(args.n, random_state=args.seed, revise=not args.proposals)
    out = Path(args.out)
    if out.suffix == ".npy":
        with atomic_path(out) as tmp, tmp.open("wb") as f:
            np.save(f, samples)
    elif out.suffix == ".png":
        value_range = getattr(model.scaler_, "data_range", None)
        save_panels(out, [(f"{args.n} samples", samples)], value_range)
    else:
        raise ValueError(f"--out must end in .npy or .png; got {args.out!r}.")
    print(f"samples: {out}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from coopkit import CoopFlow, metrics

    model = CoopFlow.load(args.model)
    reference, _ = load_data(args.reference, args.key)
    n = args.n if args.n is not None else len(reference)
    samples = model.sample(n, random_state=args.seed)
    scaler = model.scaler_
    if scaler.kind == "image":
        score = metrics.fid(
            samples,
            reference,
            data_range=scaler.data_range,
            weights_path=args.weights,
            device=model.device_,
        )
        print(f"fid: {score:.3f} ({n} samples against {len(reference)} reference images)")
    features = int(np.prod(scaler.input_shape))
    if features <= C2ST_MAX_FEATURES:
        flat = [np.asarray(a, dtype=np.float64).reshape(len(a), -1) for a in (samples, reference)]
        print(f"c2st: {metrics.c2st(*flat, random_state=args.seed):.3f} (0.5: indistinguishable)")
    return 0


def _plugins(args: argparse.Namespace) -> int:
    from coopkit import available

    rows = [("kind", "name", "origin", "description")]
    for kind in ("flow", "energy", "sampler"):
        rows += [(kind, p.name, p.origin, p.description) for p in available(kind)]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[3]]))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from coopkit.demo import run_demo

    result = run_demo(args.data, Path(args.out), args.n_iter, args.seed, not args.quiet)
    for key, value in result.items():
        label = key.replace("_", " ")
        print(f"{label}: {value:.2f}" if isinstance(value, float) else f"{label}: {value}")
    return 0


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line, like every other error here."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"coopkit: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="coopkit",
        description="CoopFlow from the command line: fit, sample, evaluate, plugins, demo.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    _add_fit(commands)
    _add_sample(commands)
    _add_evaluate(commands)
    _add_plugins(commands)
    _add_demo(commands)
    return parser


def _add_fit(commands: Any) -> None:
    """``coopkit fit DATA --out DIR``: train, and write the model and its training curves."""
    fit = commands.add_parser(
        "fit",
        help="train a model on a data file or built-in data",
        description="Train CoopFlow on DATA and write DIR/model.coopkit and DIR/training.png. "
        "Works under torchrun (one process per GPU; rank 0 writes).",
    )
    fit.add_argument(
        "data", metavar="DATA", help=f".npy, .npz, or one of {', '.join(BUILT_IN_DATA)}"
    )
    fit.add_argument("--out", required=True, metavar="DIR", help="output folder")
    fit.add_argument("--key", help="the array to read from an .npz file (default: the first)")
    fit.add_argument(
        "--preset",
        help="the paper's configuration by name (coopkit.presets: cifar10-T30, cifar10-long, "
        "cifar10-pre, or released: the released training settings at a small size); the "
        "options given beside it override it",
    )
    for part in ("flow", "energy", "sampler"):
        fit.add_argument(
            f"--{part}",
            help=f"registered {part} name (default: auto, chosen by the kind of data)",
        )
        fit.add_argument(
            f"--{part}-param",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help=f"a parameter of the {part}; repeat for more",
        )
    fit.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue from a checkpoint file of an earlier fit"
    )
    from coopkit import CoopFlow

    add_parameter_flags(fit, CoopFlow)
    fit.add_argument("--seed", type=int, default=0)
    fit.add_argument("--quiet", action="store_true", help="no progress bar")
    fit.set_defaults(handler=_fit)


def _add_sample(commands: Any) -> None:
    """``coopkit sample MODEL --out FILE``: samples as an array or a picture."""
    sample = commands.add_parser(
        "sample",
        help="draw samples from a saved model",
        description="Draw samples from MODEL (written by `coopkit fit` or CoopFlow.save) into "
        "a .npy array or a .png picture.",
    )
    sample.add_argument("model", metavar="MODEL")
    sample.add_argument("-n", type=int, default=64, help="number of samples (default: %(default)s)")
    sample.add_argument("--out", required=True, help="samples.npy or grid.png")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--proposals", action="store_true", help="the flow's proposals, unrevised")
    sample.set_defaults(handler=_sample)


def _add_evaluate(commands: Any) -> None:
    """``coopkit evaluate MODEL --reference DATA``: FID and C2ST of its samples."""
    evaluate = commands.add_parser(
        "evaluate",
        help="score a saved model's samples against reference data",
        description="Draw samples from MODEL and compare them with the reference DATA: the "
        "Fréchet Inception Distance for images (torchmetrics; pip install 'coopkit[fid]'), "
        f"and a classifier two-sample test for data with at most {C2ST_MAX_FEATURES} "
        "features.",
    )
    evaluate.add_argument("model", metavar="MODEL")
    evaluate.add_argument(
        "--reference", required=True, metavar="DATA", help=".npy, .npz, or built-in data"
    )
    evaluate.add_argument("--key", help="the array to read from an .npz file (default: the first)")
    evaluate.add_argument("-n", type=int, help="samples to draw (default: as many as DATA)")
    evaluate.add_argument("--weights", help="a local copy of the Inception weights (no download)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.set_defaults(handler=_evaluate)


def _add_plugins(commands: Any) -> None:
    """``coopkit plugins``: every registered part and where it comes from."""
    plugins = commands.add_parser(
        "plugins", help="list every registered part", description="List every registered part."
    )
    plugins.set_defaults(handler=_plugins)


def _add_demo(commands: Any) -> None:
    """``coopkit demo``: train on built-in data and write pictures."""
    demo = commands.add_parser(
        "demo",
        help="train on built-in data and write pictures",
        description="Train CoopFlow on built-in data (no download) and write pictures of "
        "data, flow proposals and revised samples, and the training curves.",
    )
    demo.add_argument("--data", choices=sorted(DEMOS), default="digits")
    demo.add_argument("--out", default="coopkit-demo", help="output folder (default: %(default)s)")
    demo.add_argument("--n-iter", type=int, default=None, help="override the iteration count")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--quiet", action="store_true", help="no progress bar")
    demo.set_defaults(handler=_demo)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``coopkit`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ValueError, TypeError, OSError, LookupError) as exc:
        message = " ".join(str(exc).split())
        print(f"coopkit: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
