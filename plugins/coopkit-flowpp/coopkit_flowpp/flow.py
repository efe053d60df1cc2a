r"""Flow++ (Ho et al., 2019) for images in [-1, 1]: the flow CoopFlow was trained with.

Data :math:`x \in [-1, 1]^{c \times h \times w}` first pass through Glow's exact map to
the real line, :class:`coopkit.flows.glow.Logit` (shrink by 0.9, then logit), then
through ``n_scales`` scales. Each scale squeezes every 2x2 patch into channels
(:func:`coopkit.flows.glow.squeeze`), applies ``n_steps`` steps of

.. math:: \text{ActNorm} \;\to\; \text{invertible } 1 \times 1 \text{ convolution}
          \;\to\; \text{logistic-mixture CDF coupling},

with channel and checkerboard masks in turn
(:class:`~coopkit_flowpp.coupling.MixtureCoupling`), and, except at the last scale,
factors out half of its channels into the latent. As in Glow the factored parts are put
back where they came from, so :math:`z` has the data's shape.

**Dequantisation.** ``forward`` takes continuous images. coopkit's training loop makes
them so by adding uniform noise of one level's width to every data batch (what the
energy net's data term and the flow's maximum-likelihood pre-training see); in the
cooperative phase the flow learns from Langevin-revised samples, continuous already.
Flow++ instead learns the noise (variational dequantisation): here that is
:meth:`FlowPlusPlus.elbo` with ``variational_dequantization=True``, for evaluation and
for users who write their own training step. The cooperative loop neither calls it nor
trains the dequantiser.
"""

from __future__ import annotations

import torch
from coopkit.flows.base import ActNorm, Transform
from coopkit.flows.glow import InvertibleConv1x1, MultiscaleFlow
from torch import Tensor

from coopkit_flowpp.coupling import MixtureCoupling, alternating_masks
from coopkit_flowpp.dequantization import UniformDequantizer, VariationalDequantizer


class FlowPlusPlus(MultiscaleFlow):
    r"""Multiscale Flow++ for images in [-1, 1], with the exact logit map in front.

    Args:
        event_shape: ``(c, h, w)``; ``h`` and ``w`` divisible by ``2**n_scales``.
        n_scales: number of scales (squeezes).
        n_steps: flow steps per scale (ActNorm, 1x1 convolution, mixture coupling).
        hidden_channels: width of each coupling's conditioner.
        n_components: logistic-mixture components ``K`` of each coupling.
        attention: gated multi-head self-attention in every conditioner (Flow++ uses it;
            off by default because it is slow on a CPU).
        attention_heads: heads of that attention; must divide ``hidden_channels``.
        scale_bound: bound ``B`` on each coupling's output log-scale, ``B tanh(a / B)``.
        dequantize_width: width of one quantisation level in model units (``2 / levels``,
            e.g. ``2 / 256`` for 8-bit images, ``2 / 17`` for digits in 0..16);
            needed only by :meth:`elbo`.
        variational_dequantization: give :meth:`elbo` a learned
            :class:`~coopkit_flowpp.dequantization.VariationalDequantizer` (attribute
            ``dequantizer``) instead of uniform noise. Its parameters get gradients
            only from :meth:`elbo`, never from ``forward``.

    Examples:
        >>> flow = FlowPlusPlus((1, 8, 8), hidden_channels=8)
        >>> x = torch.rand(4, 1, 8, 8) * 2 - 1
        >>> flow.initialize(x)
        >>> z, logdet = flow(x)
        >>> z.shape, logdet.shape
        (torch.Size([4, 1, 8, 8]), torch.Size([4]))
        >>> torch.allclose(flow.inverse(z)[0], x, atol=1e-4)
        True
    """

    name = "flowpp"

    def __init__(
        self,
        event_shape: tuple[int, ...],
        n_scales: int = 2,
        n_steps: int = 2,
        hidden_channels: int = 32,
        n_components: int = 4,
        attention: bool = False,
        attention_heads: int = 4,
        scale_bound: float = 2.0,
        dequantize_width: float | None = None,
        variational_dequantization: bool = False,
    ) -> None:
        for name, value in [
            ("n_steps", n_steps),
            ("hidden_channels", hidden_channels),
            ("n_components", n_components),
        ]:
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value!r}.")
        if attention and (attention_heads < 1 or hidden_channels % attention_heads):
            raise ValueError(
                f"attention_heads={attention_heads} must be >= 1 and divide "
                f"hidden_channels={hidden_channels}; change one of them."
            )

        def make_steps(c: int, h: int, w: int) -> list[Transform]:
            steps: list[Transform] = []
            for mask in alternating_masks(c, h, w, n_steps):
                coupling = MixtureCoupling(
                    c,
                    mask,
                    hidden_channels,
                    n_components,
                    scale_bound=scale_bound,
                    attention=attention,
                    attention_heads=attention_heads,
                )
                steps += [ActNorm(c), InvertibleConv1x1(c), coupling]
            return steps

        super().__init__(event_shape, n_scales, make_steps)
        self.dequantizer = self._dequantizer(dequantize_width, variational_dequantization)

    def _dequantizer(
        self, width: float | None, variational: bool
    ) -> UniformDequantizer | VariationalDequantizer | None:
        if width is None:
            if variational:
                raise ValueError(
                    "variational_dequantization needs dequantize_width, the width of one "
                    "level in model units (2 / levels, e.g. 2 / 256 for 8-bit images)."
                )
            return None
        if not 0 < width <= 2:
            raise ValueError(
                f"dequantize_width must lie in (0, 2] (2 / levels for images in [-1, 1]); "
                f"got {width!r}."
            )
        if variational:
            return VariationalDequantizer(self.event_shape, width)
        return UniformDequantizer(width)

    def elbo(
        self, x: Tensor, generator: torch.Generator | None = None, n_samples: int = 1
    ) -> Tensor:
        r"""Lower bound on the log-probability of discrete images, ``(n,)`` in nats.

        .. math::
            \log P(x) \ge \mathbb{E}_{u \sim q(\cdot \mid x)}
                \bigl[\log p(x + u) - \log q(u \mid x)\bigr],

        averaged over ``n_samples`` draws of the dequantiser (``dequantizer``: uniform,
        or learned with ``variational_dequantization=True``). Being a bound on a
        probability, it is the same in any units; ``-elbo / (D log 2)`` is the usual
        bits per dimension. It is differentiable (reparametrised noise): maximise it to
        train the flow and the variational dequantiser together, as Flow++ does. With
        uniform noise its gradient is that of coopkit's maximum-likelihood pre-training.

        Args:
            x: ``(n, c, h, w)`` discrete images as the lower edges of their levels in
                model units, so ``x + dequantize_width <= 1`` (what coopkit's image
                scaler produces for integer data).
            generator: source of the dequantisation noise.
            n_samples: draws averaged per image.

        Examples:
            >>> flow = FlowPlusPlus((1, 4, 4), hidden_channels=8, dequantize_width=2 / 17)
            >>> levels = torch.randint(0, 17, (3, 1, 4, 4))
            >>> bound = flow.elbo(levels * 2 / 17 - 1, torch.Generator().manual_seed(0))
            >>> bound.shape, bool((bound < 0).all())
            (torch.Size([3]), True)
        """
        if self.dequantizer is None:
            raise ValueError(
                "elbo needs the quantisation width: build the flow with dequantize_width="
                "2 / levels (and variational_dequantization=True for a learned one)."
            )
        self._check(x)
        draws = []
        for _ in range(n_samples):
            y, log_q = self.dequantizer.dequantize(x, generator)
            draws.append(self.log_prob(y) - log_q)
        return torch.stack(draws).mean(dim=0)
