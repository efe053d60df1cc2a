"""Model files and training checkpoints that load without unpickling arbitrary objects.

:func:`save_model` and :func:`load_model` are what ``CoopFlow.save`` and ``CoopFlow.load``
write and read: a :class:`SavedModel` (the parameters, the scaler, the parts and the
fitted attributes), with no estimator involved; the functions below them read and write
the files. :class:`PersistenceMixin` gives the estimator its ``save`` and ``load``.

Both are written with :func:`torch.save` to a temporary file that is then renamed over
the target (so a crash never leaves a half-written file) and read with
``torch.load(weights_only=True)``, which only rebuilds tensors and plain containers.
A model file holds the estimator's parameters as JSON, the fitted state as plain
values, and the weights as state dicts; a checkpoint holds the whole training state.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

from coopkit import registry
from coopkit.assembly import Settings, build_parts
from coopkit.data import Scaler, scaler_from_dict, scaler_to_dict
from coopkit.files import atomic_path
from coopkit.flows.base import Flow
from coopkit.samplers.base import Sampler
from coopkit.training.trainer import sampler_state
from coopkit.validation import PATH, check_arg, plain, resolve_device

MODEL_FORMAT = "coopkit-model"
CHECKPOINT_FORMAT = "coopkit-checkpoint"
FORMAT_VERSION = 1
CHECKPOINT_NAME = "checkpoint.pt"
SAVED_ATTRIBUTES = (
    "n_iter_",
    "n_features_in_",
    "history_",
    "stop_reason_",
    "_log_partition_info",
    "tilt_",
    "tilt_info_",
    "validation_scores_",
    "best_validation_score_",
)


@dataclass(frozen=True)
class SavedModel:
    """What a model file holds: the estimator's ``params`` (``get_params(deep=False)``),
    the ``scaler`` of its data, its fitted parts, and its ``fitted`` attributes (those of
    :data:`SAVED_ATTRIBUTES`)."""

    params: dict[str, Any]
    scaler: Scaler
    flow: Flow
    energy: nn.Module
    sampler: Sampler
    fitted: dict[str, Any]


class PersistenceMixin:
    """:meth:`save` and :meth:`load` for CoopFlow: a fitted model to one file and back,
    through :func:`save_model` and :func:`load_model`."""

    def save(self, path: str | Path) -> Path:
        """Write the fitted model to one file, atomically.

        Parameters are stored as JSON, the fitted state as plain values, the weights as
        state dicts; :meth:`load` reads it without unpickling arbitrary objects. Parts
        must be given by registered name. The optimisers' state is not kept: to continue
        training later, use ``checkpoint_dir`` and ``fit(X, resume=...)``.
        """
        check_arg("path", path, PATH)
        check_is_fitted(self)
        fitted = {name: getattr(self, name) for name in SAVED_ATTRIBUTES}
        parts = (self.flow_, self.energy_, self.sampler_)
        params = self.get_params(deep=False)
        return save_model(path, SavedModel(params, self.scaler_, *parts, fitted))

    @classmethod
    def load(cls, path: str | Path, device: str | None = None) -> Any:
        """Read a model written by :meth:`save`, onto ``device`` (default: the saved
        device when it is available here, else the CPU).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is corrupt or truncated, or not a coopkit model.
            UnknownPartError: a part's plugin is not installed (the message names both).
        """
        check_arg("path", path, PATH)
        if device is not None:
            resolve_device(device)
        saved = load_model(path, device, cls().get_params(deep=False))
        model = cls(**saved.params)
        model.scaler_, model.device_ = saved.scaler, resolve_device(model.device)
        model.flow_, model.energy_, model.sampler_ = saved.flow, saved.energy, saved.sampler
        model.tilt_, model.tilt_info_ = 1.0, None  # a file written before the tilt existed
        model.validation_scores_ = model.best_validation_score_ = None  # or early stopping
        fitted = dict(saved.fitted)
        if "log_partition_info_" in fitted:  # a file written before log Z was lazy
            fitted["_log_partition_info"] = fitted.pop("log_partition_info_")
            fitted.pop("log_partition_", None), fitted.pop("log_partition_se_", None)
        for name, value in fitted.items():
            setattr(model, name, value)
        auto = Settings.resolve(saved.params, saved.scaler.kind).auto
        model.settings_ = {**auto, **saved.scaler.described(), "tilt": model.tilt_}
        return model


def save_model(path: str | Path, model: SavedModel) -> Path:
    """Write ``model`` to ``path`` atomically: its parameters as JSON, the fitted
    attributes as plain values, the weights as state dicts. Parts must be given by
    registered name, so that loading rebuilds them through the registry."""
    specs = Settings.resolve(model.params, model.scaler.kind).parts
    unnamed = [kind for kind, spec in specs.items() if not isinstance(spec, str)]
    if unnamed:
        raise ValueError(
            f"save needs parts given by registered name; {', '.join(unnamed)} "
            "is not. Register the part (coopkit.register_plugin) or pickle the model."
        )
    parts = {
        kind: {"name": name, "origin": registry.resolve(kind, name).origin}
        for kind, name in specs.items()
    }
    return write_model(
        path,
        {
            "params": to_json(model.params),
            "parts": parts,
            "scaler": scaler_to_dict(model.scaler),
            "flow": {k: v.cpu() for k, v in model.flow.state_dict().items()},
            "energy": {k: v.cpu() for k, v in model.energy.state_dict().items()},
            "sampler": sampler_state(model.sampler),
            "fitted": plain(model.fitted),
        },
    )


def _check_parts_installed(parts: dict[str, dict[str, str]]) -> None:
    for kind, part in parts.items():
        try:
            registry.resolve(kind, part["name"])
        except registry.UnknownPartError as exc:
            raise registry.UnknownPartError(
                f"This model needs the {kind} {part['name']!r} from {part['origin']}, "
                f"which is not installed here; install {part['origin'].split()[0]!r} "
                f"and load again. ({exc})"
            ) from exc


def load_model(path: str | Path, device: str | None, defaults: Mapping[str, Any]) -> SavedModel:
    """Read a model written by :func:`save_model`, its parts rebuilt on ``device``
    (``None``: the saved device when it is available, else the CPU), which its
    ``params["device"]`` then names. ``defaults`` are the estimator's parameters by
    default, for those a file written before they existed does not hold."""
    payload = read_model(path)
    params = {**defaults, **json.loads(payload["params"])}
    if params.get("data_range") is not None:
        params["data_range"] = tuple(params["data_range"])
    if device is None:
        saved = str(params.get("device", "auto"))
        device = saved if saved in ("auto", "cpu") or torch.cuda.is_available() else "cpu"
    params["device"] = device
    _check_parts_installed(payload["parts"])
    scaler = scaler_from_dict(payload["scaler"])
    settings = Settings.resolve(params, scaler.kind)
    flow, energy, sampler = build_parts(settings, scaler, seed=0)
    flow.load_state_dict(payload["flow"])
    energy.load_state_dict(payload["energy"])
    for name, value in payload["sampler"].items():
        setattr(sampler, name, value)
    target = resolve_device(device)
    return SavedModel(
        params, scaler, flow.to(target), energy.to(target), sampler, payload["fitted"]
    )


def to_json(params: dict[str, Any]) -> str:
    """The estimator's parameters as JSON, numpy scalars (as a grid search leaves them)
    as the Python numbers they hold; a clear error for what JSON cannot hold.

    Examples:
        >>> to_json({"n_iter": np.int64(5), "flow": "glow", "flow_params": None})
        '{"flow": "glow", "flow_params": null, "n_iter": 5}'
    """
    try:
        return json.dumps(params, sort_keys=True, default=_numpy_scalar)
    except TypeError as exc:
        raise ValueError(
            f"The parameters cannot be saved as JSON ({exc}). Give flow, energy and sampler "
            "as registered names and parameters as plain values (numbers, strings, lists, "
            "dicts), or keep the model with pickle or joblib instead."
        ) from exc


def _numpy_scalar(value: Any) -> Any:
    """A numpy scalar as its Python value, for :func:`json.dumps`; a TypeError otherwise."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _write(path: str | Path, format_name: str, payload: dict[str, Any]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save({"format": format_name, "version": FORMAT_VERSION, **payload}, tmp)
    return path


def _read(path: str | Path, format_name: str, what: str) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No {what} at {path}.")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as exc:
        # torch's message on a refused object suggests weights_only=False, which would run
        # code from the file: it is left out, not chained.
        raise ValueError(
            f"{path} is not a readable {what}: the file is corrupt or truncated, or was not "
            "written by coopkit (coopkit reads tensors and plain values only and never "
            f"unpickles other objects; {type(exc).__name__} while reading it)."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != format_name:
        raise ValueError(f"{path} is not a {what} (no '{format_name}' header).")
    if payload.get("version") != FORMAT_VERSION:
        raise ValueError(
            f"{path} is a {what} of format version {payload.get('version')}; this coopkit "
            f"reads version {FORMAT_VERSION}."
        )
    return payload


def write_model(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a model file atomically."""
    return _write(path, MODEL_FORMAT, payload)


def read_model(path: str | Path) -> dict[str, Any]:
    """Read a model file on the CPU; a clear ValueError if it is corrupt or truncated.

    Examples:
        >>> import tempfile
        >>> path = write_model(Path(tempfile.mkdtemp()) / "m.coopkit", {"w": torch.ones(2)})
        >>> payload = read_model(path)
        >>> payload["format"], payload["w"]
        ('coopkit-model', tensor([1., 1.]))
    """
    return _read(path, MODEL_FORMAT, "coopkit model file")


def write_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write a training checkpoint atomically."""
    return _write(path, CHECKPOINT_FORMAT, payload)


def read_checkpoint(path: str | Path, fingerprint: list[float]) -> dict[str, Any]:
    """Read a checkpoint and check that it was made on the data whose
    :func:`~coopkit.data.data_fingerprint` is ``fingerprint``.

    Examples:
        >>> import tempfile
        >>> from coopkit.data import data_fingerprint
        >>> X = np.zeros((4, 2))
        >>> path = Path(tempfile.mkdtemp()) / CHECKPOINT_NAME
        >>> _ = write_checkpoint(path, {"data": data_fingerprint(X), "iteration": 7})
        >>> read_checkpoint(path, data_fingerprint(X))["iteration"]
        7
        >>> try:
        ...     read_checkpoint(path, data_fingerprint(X + 1))
        ... except ValueError as exc:
        ...     print("refused:", str(exc).split("; ")[1])
        refused: resume with the same X as the run that wrote it.
    """
    payload = _read(path, CHECKPOINT_FORMAT, "coopkit checkpoint")
    if not np.allclose(payload["data"], fingerprint, rtol=1e-9):
        raise ValueError(
            f"Checkpoint {path} was written while training on other data; resume with the "
            "same X as the run that wrote it."
        )
    return payload
