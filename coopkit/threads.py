"""Torch's intra-op threads, set for the duration of one call and restored after it.

On a CPU shared with other busy processes, torch's intra-op threads make a run several
times slower than one thread does: every operation waits for the thread that lost its
core. ``CoopFlow(n_threads=...)`` sets the number of threads for ``fit`` and the
sampling and scoring methods (as scikit-learn's ``n_jobs`` does for its estimators) and
gives the caller's setting back afterwards; ``docs/scaling.md`` has the measurements.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

from coopkit.validation import PARAMETER_CONSTRAINTS, check_arg


@contextmanager
def torch_threads(n_threads: int | None) -> Iterator[None]:
    """Run the block with ``n_threads`` intra-op threads (``None``: leave torch's setting).

    Examples:
        >>> before = torch.get_num_threads()
        >>> with torch_threads(1):
        ...     torch.get_num_threads()
        1
        >>> torch.get_num_threads() == before
        True
    """
    check_arg("n_threads", n_threads, PARAMETER_CONSTRAINTS["n_threads"])
    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(n_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


Method = TypeVar("Method", bound=Callable[..., Any])


def uses_threads(method: Method) -> Method:
    """Run an estimator method under :func:`torch_threads` with the estimator's
    ``n_threads``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        with torch_threads(getattr(self, "n_threads", None)):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
