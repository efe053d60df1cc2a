from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest
import torch

from coopkit import CoopFlow
from coopkit.datasets import eight_gaussians
from coopkit.persistence import MODEL_FORMAT
from coopkit.registry import UnknownPartError, default_registry
from tests.conftest import MakeDistribution
from tests.test_registry import TINY_FLOW_PLUGIN

FAST = {"n_iter": 3, "batch_size": 32, "random_state": 0, "flow_params": {"n_layers": 2}}


@pytest.fixture(scope="module")
def model() -> CoopFlow:
    return CoopFlow(**FAST).fit(eight_gaussians(128, 0))


def same_model(a: CoopFlow, b: CoopFlow) -> None:
    X = eight_gaussians(6, 5)
    assert np.array_equal(a.sample(5, random_state=0), b.sample(5, random_state=0))
    assert np.array_equal(a.score_samples(X), b.score_samples(X))
    assert np.array_equal(a.transform(X), b.transform(X))
    assert a.history_ == b.history_


def test_pickle_and_joblib_round_trips(model: CoopFlow, tmp_path: Path) -> None:
    same_model(model, pickle.loads(pickle.dumps(model)))
    joblib.dump(model, tmp_path / "m.joblib")
    same_model(model, joblib.load(tmp_path / "m.joblib"))


def test_save_and_load_round_trip(model: CoopFlow, tmp_path: Path) -> None:
    path = model.save(tmp_path / "model.coopkit")
    loaded = CoopFlow.load(path)
    same_model(model, loaded)
    assert loaded.get_params() == model.get_params()
    assert loaded.log_partition_ == model.log_partition_
    assert loaded.log_partition_info_ == model.log_partition_info_
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == MODEL_FORMAT
    assert json.loads(payload["params"])["flow_params"] == {"n_layers": 2}
    assert payload["parts"]["flow"] == {"name": "nsf", "origin": "coopkit (built-in)"}


def test_a_model_saved_for_cuda_loads_on_a_cpu(model: CoopFlow, tmp_path: Path) -> None:
    """A file written on a GPU machine holds CPU tensors and device='cuda' in its
    parameters; here (no GPU) it must load on the CPU. The tensors of a real CUDA save
    are moved to the CPU by ``save`` before writing, which this test cannot exercise."""
    path = model.save(tmp_path / "model.coopkit")
    payload = torch.load(path, weights_only=True)
    payload["params"] = json.dumps({**json.loads(payload["params"]), "device": "cuda"})
    torch.save(payload, path)
    loaded = CoopFlow.load(path)
    if not torch.cuda.is_available():
        assert loaded.device_ == torch.device("cpu")
        assert loaded.device == "cpu"
    assert loaded.sample(2, random_state=0).shape == (2, 2)


def test_loading_needs_the_plugin_of_each_part(
    make_distribution: MakeDistribution, tmp_path: Path
) -> None:
    site = make_distribution("tiny-flows", "tiny_flows", TINY_FLOW_PLUGIN, {"tiny": "tiny_flows"})
    fitted = CoopFlow(flow="tinyflow", n_iter=2, batch_size=16, random_state=0).fit(
        eight_gaussians(64, 0)
    )
    path = fitted.save(tmp_path / "tiny.coopkit")
    sys.path.remove(str(site))
    sys.modules.pop("tiny_flows", None)
    default_registry.reload()
    with pytest.raises(
        UnknownPartError,
        match=r"needs the flow 'tinyflow' from tiny-flows 0.1.*install 'tiny-flows'",
    ):
        CoopFlow.load(path)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "empty"])
def test_corrupt_or_truncated_files_are_named(model: CoopFlow, tmp_path: Path, damage: str) -> None:
    path = model.save(tmp_path / "model.coopkit")
    content = path.read_bytes()
    path.write_bytes(
        {"garbage": b"not a model" * 10, "truncated": content[: len(content) // 2], "empty": b""}[
            damage
        ]
    )
    with pytest.raises(ValueError, match="corrupt or truncated"):
        CoopFlow.load(path)


def test_other_files_are_rejected(tmp_path: Path) -> None:
    torch.save({"format": "something-else"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="is not a coopkit model file"):
        CoopFlow.load(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="No coopkit model file"):
        CoopFlow.load(tmp_path / "missing.pt")


def test_a_failed_save_keeps_the_previous_file(
    model: CoopFlow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = model.save(tmp_path / "model.coopkit")
    before = path.read_bytes()

    def broken_save(obj: object, f: object) -> None:
        Path(f).write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        model.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["model.coopkit"]


def test_parts_given_as_objects_cannot_be_saved_as_json(tmp_path: Path) -> None:
    from coopkit.flows import RealNVP

    fitted = CoopFlow(flow=RealNVP, n_iter=1, batch_size=16).fit(eight_gaussians(32, 0))
    with pytest.raises(ValueError, match="save needs parts given by registered name; flow"):
        fitted.save(tmp_path / "m.coopkit")
