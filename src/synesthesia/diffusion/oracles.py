"""Exact denoisers for Gaussian and Gaussian-mixture data: references for samplers and guidance.

For data ``x0 ~ sum_k w_k N(m_k, diag(v_k))`` and ``x_t = a x0 + s eps``, the posterior mean is
``E[x0 | x_t] = sum_k r_k(x_t) (m_k + a v_k / (a^2 v_k + s^2) (x_t - a m_k))`` with
responsibilities ``r_k`` under the marginals ``N(a m_k, a^2 v_k + s^2)``. That is the exact
minimiser of the x0 loss, so a sampler driven by it should reproduce the data distribution.
"""

from __future__ import annotations

import torch

from synesthesia.diffusion.objectives import check_prediction
from synesthesia.diffusion.schedules import NoiseSchedule


class GaussianMixtureOracle:
    """The exact denoiser for a mixture of diagonal Gaussians, optionally class-conditional.

    Called as ``oracle(x_t, t, labels=None)``: ``labels[i] = k`` conditions sample i on
    component k; a label equal to ``num_components`` (the null class) or no labels gives the
    unconditional mixture. Returns the prediction of type ``prediction``.
    """

    def __init__(
        self,
        means: torch.Tensor,
        stds: torch.Tensor,
        schedule: NoiseSchedule,
        weights: torch.Tensor | None = None,
        prediction: str = "eps",
    ) -> None:
        check_prediction(prediction)
        self.means = torch.as_tensor(means, dtype=torch.float64)
        self.stds = torch.as_tensor(stds, dtype=torch.float64)
        if self.means.ndim != 2 or self.stds.shape != self.means.shape:
            raise ValueError(
                f"means and stds must both be (components, dims), got "
                f"{tuple(self.means.shape)} and {tuple(self.stds.shape)}"
            )
        if bool((self.stds <= 0).any()):
            raise ValueError("stds must be positive")
        K = self.means.shape[0]
        w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else weights
        self.weights = torch.as_tensor(w, dtype=torch.float64)
        if self.weights.shape != (K,) or abs(float(self.weights.sum()) - 1) > 1e-6:
            raise ValueError(f"weights must be {K} probabilities summing to 1")
        self.weights = self.weights / self.weights.sum()
        self.schedule, self.prediction = schedule, prediction
        self.num_components = K
        self.calls = 0

    def sample_data(self, n: int, generator: torch.Generator, labels=None) -> torch.Tensor:
        """``n`` draws of x0 (float64): from the mixture, or from the components in ``labels``."""
        if labels is None:
            labels = torch.multinomial(self.weights, n, replacement=True, generator=generator)
        z = torch.randn((n, self.means.shape[1]), generator=generator, dtype=torch.float64)
        return self.means[labels] + self.stds[labels] * z

    def x0_mean(self, x_t: torch.Tensor, abar: torch.Tensor, labels=None) -> torch.Tensor:
        """``E[x0 | x_t]`` in float64 (abar of shape (B,))."""
        x = x_t.double()
        a = abar.sqrt()[:, None, None]
        s2 = (1 - abar)[:, None, None]
        m, v = self.means[None], self.stds[None] ** 2  # 1 x K x D
        var = a**2 * v + s2  # B x K x D (marginal variance of x_t per component)
        diff = x[:, None, :] - a * m
        if self.num_components == 1:
            return (m + a * v / var * diff)[:, 0]
        logp = -0.5 * (diff**2 / var + var.log()).sum(-1) + self.weights.log()[None]
        if labels is not None:
            labels = torch.as_tensor(labels, device="cpu").long()
            onehot = torch.nn.functional.one_hot(labels, self.num_components + 1)[:, :-1]
            conditioned = labels < self.num_components
            logp = torch.where(
                conditioned[:, None] & (onehot == 0), torch.full_like(logp, -torch.inf), logp
            )
        r = torch.softmax(logp, dim=1)  # B x K
        comp_mean = m + a * v / var * diff
        return (r[:, :, None] * comp_mean).sum(1)

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor, labels=None) -> torch.Tensor:
        self.calls += 1
        t = t.detach().cpu().double()
        levels, index = torch.unique(t, return_inverse=True)  # samplers call with one time
        abar = self.schedule.abar_at(levels)[index]
        x0 = self.x0_mean(x_t.cpu(), abar, labels)
        a, s = abar.sqrt()[:, None], (1 - abar).sqrt()[:, None]
        x = x_t.double().cpu()
        if self.prediction == "x0":
            out = x0
        else:
            eps = (x - a * x0) / s
            out = eps if self.prediction == "eps" else a * eps - s * x0
        return out.to(dtype=x_t.dtype, device=x_t.device)


def gaussian_oracle(
    mean: torch.Tensor, std: torch.Tensor, schedule: NoiseSchedule, prediction: str = "eps"
) -> GaussianMixtureOracle:
    """The exact denoiser for ``x0 ~ N(mean, diag(std^2))`` (one component)."""
    return GaussianMixtureOracle(
        torch.as_tensor(mean, dtype=torch.float64)[None],
        torch.as_tensor(std, dtype=torch.float64)[None],
        schedule,
        prediction=prediction,
    )
