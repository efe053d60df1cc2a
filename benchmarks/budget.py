"""Training for a budget of CPU seconds, the unit of the equal-time comparisons
(:mod:`benchmarks.wall_time` on the digits, :mod:`benchmarks.tables` on tables).

A budget is CPU time of the training process (:func:`time.process_time`), which with
one thread is the wall time of an idle core and, unlike the wall time, does not grow
when other jobs share the machine. An estimator gets its iteration count from the
budget (:func:`fitted_for`); zuko's flows train in a loop that checks the clock
(:func:`zuko_nsf_at`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence

import torch

from coopkit import CoopFlow

CALIBRATION_ITER = 30


def fitted_for(
    make: Callable[[int], CoopFlow], seconds: float, train: object
) -> tuple[CoopFlow, float]:
    """The estimator ``make(n_iter)`` fitted on ``train`` for about ``seconds``, and the
    seconds it took.

    Two calibration fits of :data:`CALIBRATION_ITER` and four times as many iterations
    give the cost of one iteration and the fit's fixed cost (initialisation, ``log Z``);
    the fixed cost is taken as at most 80% of the longer fit, so that timing noise in a
    cheap method's calibration cannot make it look free. A first, untimed fit of a few
    iterations warms the process up: without it the first calibration of a process
    carried the one-off costs, and the first seed's CoopFlow got 40% more CPU seconds
    than the budget on the tables benchmark."""
    make(2).fit(train)
    taken = []
    for n_iter in (CALIBRATION_ITER, 4 * CALIBRATION_ITER):
        start = time.process_time()
        make(n_iter).fit(train)
        taken.append(time.process_time() - start)
    longer = 4 * CALIBRATION_ITER
    per_iter = max((taken[1] - taken[0]) / (3 * CALIBRATION_ITER), 0.2 * taken[1] / longer)
    fixed = max(taken[1] - longer * per_iter, 0.0)
    model = make(max(1, int((seconds - fixed) / per_iter)))
    start = time.process_time()
    model.fit(train)
    return model, time.process_time() - start


def zuko_nsf_at(
    x: torch.Tensor,
    budgets: Sequence[float],
    seed: int,
    batch_size: int = 256,
    dequantize: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
) -> Iterator[tuple[float, torch.nn.Module, float, int]]:
    """zuko's ``NSF`` (4 transforms, 2 x 128 hidden, Adam at 1e-3) trained by maximum
    likelihood on the rows of ``x`` ``(n, d)``, once, for ``max(budgets)`` seconds:
    at each budget, in increasing order, ``(budget, flow, seconds trained, iterations)``
    (the caller's time between budgets is not counted). ``dequantize`` maps a batch
    before the step (the digits add uniform noise and scale to [0, 1))."""
    import zuko

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    flow = zuko.flows.NSF(x.shape[1], transforms=4, hidden_features=[128, 128])
    optimizer = torch.optim.Adam(flow.parameters(), lr=1e-3)
    trained, n_iter = 0.0, 0
    for budget in sorted(budgets):
        start = time.process_time()
        while trained + time.process_time() - start < budget:
            batch = x[torch.randint(len(x), (batch_size,), generator=generator)]
            if dequantize is not None:
                batch = dequantize(batch, generator)
            loss = -flow().log_prob(batch).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            n_iter += 1
        trained += time.process_time() - start
        yield budget, flow, trained, n_iter
