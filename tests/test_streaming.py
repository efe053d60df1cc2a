"""``fit`` on data it reads batch by batch: memory-mapped arrays and torch Datasets."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from coopkit import CoopFlow
from coopkit.streaming import Rows, summarize

SMALL_IMAGES = {
    "flow": "glow",
    "energy": "conv",
    "n_iter": 2,
    "batch_size": 16,
    "flow_params": {"hidden_channels": 8, "n_steps": 1},
    "energy_params": {"n_f": 4},
    "sampler_params": {"n_steps": 2},
    "n_partition_samples": 64,
    "random_state": 0,
}


def memmap(path: Path, array: np.ndarray) -> np.memmap:
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def images(n: int, seed: int = 0) -> np.ndarray:
    """``n`` images ``(1, 8, 8)`` with levels 0..16, like the digits."""
    return np.random.default_rng(seed).integers(0, 17, (n, 1, 8, 8)).astype(np.float64)


def test_a_memory_mapped_array_trains_as_the_array(tmp_path: Path) -> None:
    X = images(200)
    params = {**SMALL_IMAGES, "data_range": (0, 16)}
    in_memory = CoopFlow(**params).fit(X)
    mapped = CoopFlow(**params).fit(memmap(tmp_path / "x.npy", X))
    assert mapped.scaler_ == in_memory.scaler_
    np.testing.assert_allclose(
        mapped.sample(8, random_state=0), in_memory.sample(8, random_state=0), atol=1e-4
    )


def test_table_scaling_from_a_stream_matches_the_array(tmp_path: Path) -> None:
    X = np.random.default_rng(0).normal(3.0, 2.0, (3000, 4))
    X[:, 2] = 5.0  # a constant feature keeps scale 1
    params = {"n_iter": 1, "batch_size": 64, "n_partition_samples": 64, "random_state": 0}
    in_memory = CoopFlow(**params).fit(X).scaler_
    mapped = CoopFlow(**params).fit(memmap(tmp_path / "t.npy", X)).scaler_
    np.testing.assert_allclose(mapped.mean, in_memory.mean, rtol=1e-12)
    np.testing.assert_allclose(mapped.scale, in_memory.scale, rtol=1e-9)
    np.testing.assert_allclose(mapped.model_bounds, in_memory.model_bounds, rtol=1e-9)
    assert mapped.scale[2] == 1.0


def test_a_dataset_of_image_label_pairs_is_scaled_and_reproducible() -> None:
    X = torch.as_tensor(images(100) / 16.0, dtype=torch.float32)  # as ToTensor gives
    dataset = TensorDataset(X, torch.zeros(len(X), dtype=torch.long))
    first, second = (CoopFlow(**SMALL_IMAGES).fit(dataset) for _ in range(2))
    assert first.scaler_.data_range == (0.0, 1.0)
    assert first.scaler_.event_shape == (1, 8, 8)
    np.testing.assert_array_equal(first.sample(4, random_state=0), second.sample(4, random_state=0))
    assert first.history_["flow_nll"] == second.history_["flow_nll"]


def test_a_stream_resumes_from_its_checkpoint_as_one_run(tmp_path: Path) -> None:
    X = memmap(tmp_path / "x.npy", images(120))
    # A constant rate: a cosine decay is planned over n_iter, so the first two iterations
    # of a 2-iteration run are not those of a 4-iteration one.
    params = {**SMALL_IMAGES, "data_range": (0, 16), "checkpoint_every": 2}
    params["lr_schedule"] = "constant"
    CoopFlow(**{**params, "n_iter": 2}, checkpoint_dir=str(tmp_path / "run")).fit(X)
    resumed = CoopFlow(**{**params, "n_iter": 4}).fit(X, resume=tmp_path / "run" / "checkpoint.pt")
    whole = CoopFlow(**{**params, "n_iter": 4}).fit(X)
    assert resumed.history_["flow_nll"] == whole.history_["flow_nll"]
    with pytest.raises(ValueError, match="other data"):
        CoopFlow(**{**params, "n_iter": 4}).fit(
            memmap(tmp_path / "y.npy", images(120, seed=1)),
            resume=tmp_path / "run" / "checkpoint.pt",
        )


def peak_bytes_of_fit(X: object) -> int:
    tracemalloc.start()
    try:
        CoopFlow(**{**SMALL_IMAGES, "data_range": (0, 16)}).fit(X)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_peak_memory_does_not_grow_with_a_streamed_data_set(tmp_path: Path) -> None:
    """Ten times more images (9 MB more as float64) leave fit's peak of traced memory
    within 1 MB, where copying the array raises it by more than the array's size."""
    small, large = images(2_000), images(20_000)
    extra = large.nbytes - small.nbytes
    peak_bytes_of_fit(memmap(tmp_path / "warm-up.npy", images(100)))  # first-use imports
    streamed = [peak_bytes_of_fit(memmap(tmp_path / f"{len(x)}.npy", x)) for x in (small, large)]
    assert streamed[1] - streamed[0] < 1_000_000
    copied = [peak_bytes_of_fit(x) for x in (small, large)]
    assert copied[1] - copied[0] > extra


def test_rows_of_a_dataset_with_bad_values_are_refused() -> None:
    dataset = TensorDataset(torch.tensor([[0.0, float("nan")], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="NaN or infinite"):
        summarize(Rows(dataset))
