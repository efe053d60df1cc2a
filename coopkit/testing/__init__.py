r"""Conformance checks for flows, energy nets and samplers: coopkit's tests and plugins'.

Every part, built in or third-party, must meet the same bar. Three checks take the
factory a part is registered with and raise :class:`AssertionError`, naming the
failed check (in brackets) and the likely fix, on the first failure:

* :func:`check_flow` ``(factory, event_shape, **params)``: exact inverse, correct
  log-determinants, on the inputs that Langevin produces;
* :func:`check_energy` ``(factory, event_shape, **params)``: one finite energy per
  sample, differentiable twice;
* :func:`check_sampler` ``(factory, **params)``: the sampler contract and statistics;
* :func:`check_plugin` ``(distribution)``: the package's entry point loads and every
  hook it implements is one of coopkit's (a misspelled hook registers nothing).

coopkit's own suite runs them over every registered part (``tests/test_conformance.py``,
parametrised from :func:`coopkit.available`); a plugin's suite calls them on its parts:

```python
from coopkit.testing import check_energy, check_flow, check_sampler
from my_plugin import MyEnergy, MyFlow, my_sampler  # the registered factories

def test_my_flow_conforms() -> None:
    check_flow(MyFlow, (3,), hidden_features=16)  # small sizes keep it fast

def test_my_energy_conforms() -> None:
    check_energy(MyEnergy, (1, 8, 8), n_f=8)

def test_my_sampler_conforms() -> None:
    check_sampler(my_sampler, n_leapfrog=5)

def test_my_entry_point_loads_with_known_hooks() -> None:
    check_plugin("my-plugin")  # the distribution's name
```

**Flows** (:func:`check_flow`). The flow is built by ``factory(event_shape, **params)``
(torch's global random state forked and seeded: the check is reproducible and leaves
that state alone), converted to float64, initialised on a batch of 64
(:meth:`~coopkit.flows.base.Flow.initialize`, e.g. ActNorm's data-dependent start),
and every parameter is then moved by :math:`\mathcal{N}(0, 0.1^2)` noise, so that
conditioners that start at zero (identity couplings) hide nothing. Inputs come from
the flow's domain: for images (``event_shape`` of length 3) uniform in [-1, 1] with a
drawn fraction of pixels at exactly ±1, where Langevin clamps them; otherwise standard
normal times a drawn scale (tables reach flows standardised). Checked, in this order:

* *shapes*: ``forward(x) -> (z, logdet)`` with ``z`` shaped like ``x``, ``logdet``
  ``(n,)``, the input's dtype, finite; likewise ``inverse``; inputs not modified;
* *initialisation runs once*: a forward call on a batch with other statistics changes
  no parameter or buffer;
* *train/eval*: ``flow.train()`` and ``flow.eval()`` give the same outputs both ways;
* *batch independence*: each sample's latent and log-determinant alone equal those
  computed in the batch;
* *state_dict*: saved with :func:`torch.save`, loaded with ``torch.load(...,
  weights_only=True)`` into a fresh instance from the factory (another random
  initialisation), the outputs are identical;
* *sample*: ``flow.sample(n, generator)`` gives finite ``(n, *event_shape)`` samples,
  the same for the same generator seed;
* *parameter gradients*: the mean ``log_prob`` of a batch gives every parameter a
  finite, non-zero gradient;
* per point, on 5 hypothesis examples (batch size, scale, fraction of clamped pixels,
  seed; derandomised) and then *out of range* (tables: every coordinate, or one, at
  ±20 standard units; images: every pixel at -1 or 1): *round trip*
  ``inverse(forward(x)) = x`` and ``forward(inverse(z)) = z`` for base draws ``z``;
  *forward log-determinant* equal to :func:`torch.linalg.slogdet` of the autograd
  Jacobian of one sample's flattened map, *inverse log-determinant* likewise, and the
  two *cancelling*.

Tolerances, relative plus absolute, float64: :math:`10^{-7}` for round trips,
:math:`10^{-6}` for log-determinants. A Jacobian costs one backward pass per element
of a sample: keep event shapes small (``(3,)``, ``(1, 8, 8)``) and the flow's sizes
small, and the check takes a second or two on one CPU core.

**Energy nets** (:func:`check_energy`). Built the same way (seeded, parameters moved by
small noise), in float32 and float64 copies, with inputs from the same domains.
Checked on 5 hypothesis examples (batch sizes from 1) and out of range:

* *shape*: energies ``(n,)``, also for a batch of one (``.squeeze()`` would give a
  scalar); *dtype*: the input's (float32 and float64); *finite*;
* *determinism*: a second call gives the same energies (no dropout);
* *batch independence*: each sample's energy alone equals its energy in the batch;
* *input gradient*: :math:`\nabla_x E` finite and, along a random direction, equal to
  central finite differences of :math:`E` (no detached paths);
* *twice differentiable*: a Hessian-vector product exists, is finite and matches
  finite differences of :math:`\nabla_x E` (reconstruction back-propagates through
  Langevin steps, which contain :math:`\nabla_x E`);

then *parameter gradients* of the mean energy and the *state_dict* round trip, as for
flows.

**Samplers** (:func:`check_sampler`): two groups of checks.

**Contract** (:func:`check_sampler_contract`, driven by hypothesis over batch sizes,
event shapes and seeds, for float32 and float64):

* ``result.x`` has the shape, dtype and device of ``x0``; ``x0`` is not modified;
* with ``differentiable=False`` no graph is kept (``result.x.requires_grad`` is
  ``False``, ``result.x.grad_fn`` is ``None``), even when ``x0`` and the energy's
  parameters require grad, and no gradient is accumulated into those parameters;
* with ``differentiable=True`` a loss on ``result.x`` back-propagates to ``x0`` with a
  finite, non-zero gradient;
* the same ``generator`` seed gives identical chains and stats (two calls of the same
  sampler object), and torch's global random state is left untouched;
* ``stats`` is a ``dict`` of finite Python floats; a sampler with
  ``metropolis_corrected = True`` reports ``acceptance_rate`` in ``[0, 1]``.

**Statistics** (:func:`check_sampler_statistics`, fixed seeds, float64, CPU). Draws are
collected by calling the sampler with ``n_steps=1`` over and over, each call starting
where the last one stopped; the first calls are burn-in and are dropped. An expectation
:math:`\mathbb{E}[f]` estimated by the mean :math:`\bar f` of the draws passes when

.. math:: |\bar f - \mathbb{E}[f]| \le 5\,\frac{\hat\sigma_f}{\sqrt{\mathrm{ESS}_f}},

with :math:`\mathrm{ESS}_f` from :func:`coopkit.diagnostics.effective_sample_size`
(between-chain spread included, so chains that have not mixed get wide, not narrow,
error bars; an ESS below 100 fails outright).

* ``metropolis_corrected = True`` (exact samplers), at ``step_size`` 0.5 on 2000
  chains, 300 burn-in calls then 500 draws per chain: the mean and covariance of a 2-D
  Gaussian with correlation 0.8 (chains start off-centre), and the mean, second moment
  and mode weight of :math:`0.3\,\mathcal{N}(-2, 1) +
  0.7\,\mathcal{N}(2, 1)` (chains start in the lighter mode, so they must cross). The
  mode weight is checked through the responsibility
  :math:`r(x) = 0.3\,\mathcal{N}(x; -2, 1) / p(x)`, whose expectation is exactly 0.3.
* otherwise (unadjusted samplers), on :math:`\mathcal{N}(0, 1)` with 4000 chains at
  ``step_size`` 0.4 and 0.2, each run for the same Langevin time (a step of size ``s``
  lasts ``s²/2``): the variance bias must vanish as the step size shrinks. The bias
  ``b(s)`` of an Euler–Maruyama discretisation is ``k s² + o(s²)`` (unadjusted Langevin:
  :math:`1/(1 - s^2/4) - 1`, about 0.042 at 0.4 and 0.010 at 0.2), so its Richardson
  extrapolation :math:`(4\,b(s/2) - b(s))/3` to ``s = 0`` must be zero within 5
  standard errors. A sampler without noise, with mis-scaled noise (2 % too strong is
  caught) or with a bias that does not vanish fails; higher-order schemes pass.

How parameters reach the sampler: ``check_sampler(factory, **params)`` builds every
sampler as ``factory(**params)`` with ``n_steps`` overridden (3 in the contract checks, 1
per draw in the statistics) and, in the statistics, ``step_size`` overridden as above.
So the factory must accept ``step_size`` and ``n_steps``; everything else in ``params``
is passed unchanged. Pass what turns the sampler into a sampler of ``exp(-E)`` (for
``langevin``: ``noise_scale=1.0, max_change=None``), and leave step-size adaptation off
(each call would adapt anew). The whole check takes a few seconds on one CPU core for a
sampler that costs one gradient per step.

Examples:
    >>> from coopkit.samplers import MALASampler
    >>> check_sampler_contract(MALASampler)
"""

from __future__ import annotations

from coopkit.testing.common import jacobian_logdet
from coopkit.testing.energies import check_energy
from coopkit.testing.flows import check_flow
from coopkit.testing.plugins import check_plugin
from coopkit.testing.samplers import (
    check_sampler,
    check_sampler_contract,
    check_sampler_statistics,
)

__all__ = [
    "check_energy",
    "check_flow",
    "check_plugin",
    "check_sampler",
    "check_sampler_contract",
    "check_sampler_statistics",
    "jacobian_logdet",
]
