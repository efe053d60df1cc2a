"""Drawing from the fitted model: the flow's proposals, revised by the sampler (the
CoopFlow generator) or alone.

:class:`SamplingMixin` gives :class:`~coopkit.CoopFlow` its :meth:`~SamplingMixin.sample`
method. (``transform`` and ``inverse_transform`` stay on the estimator's class, where
scikit-learn's ``set_output`` wraps them.)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from coopkit.threads import uses_threads
from coopkit.training.energy import decode, propose, revise_proposals
from coopkit.validation import BOOLEAN, check_arg, integer


class SamplingMixin:
    """:meth:`sample` for a fitted CoopFlow."""

    @uses_threads
    def sample(
        self, n_samples: int = 1, random_state: Any = None, *, revise: bool = True
    ) -> np.ndarray:
        """Draw ``n_samples`` from the model, in the layout and units of the training data.

        Args:
            n_samples: number of samples.
            random_state: seed for this draw (``None``: fresh randomness).
            revise: run the sampler on the flow's proposals (the CoopFlow generator);
                ``False`` returns the flow's proposals alone.

        Returns:
            ``(n_samples, *sample_shape)`` float array.
        """
        check_is_fitted(self)
        check_arg("n_samples", n_samples, integer(1))
        check_arg("revise", revise, BOOLEAN)
        generator = self._generator(random_state)
        base = self.settings_["energy_base"]
        chunks = []
        for start in range(0, n_samples, self._chunk):
            m = min(self._chunk, n_samples - start)
            starts = propose(
                self.flow_, m, generator, self.proposal, self.scaler_.model_bounds, base == "flow"
            )
            if revise:
                x = revise_proposals(
                    self.flow_, self._tilted_energy(), self.sampler_, starts, base, generator
                )[1]
            else:
                x = decode(self.flow_, starts, base)
            chunks.append(x)
        return self._to_data(torch.cat(chunks))
