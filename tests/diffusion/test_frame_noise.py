"""Frame-correlated noise (PYoCo's mixed noise) as a change of variables, against closed forms:
the covariance of the noise, and samples of a Gaussian video distribution drawn through an
exact denoiser of the correlated process."""

from __future__ import annotations

import pytest
import torch

from synesthesia.diffusion import NoiseSchedule, sample
from synesthesia.diffusion.frame_noise import FrameCorrelatedDenoiser, correlated_noise, mix_frames

F = 4


def covariance(rho: float, frames: int = F) -> torch.Tensor:
    """S = (1 - rho) I + rho 1 1^T: unit variances, correlation rho between frames."""
    return (1 - rho) * torch.eye(frames, dtype=torch.float64) + rho


def as_matrix(rho: float, inverse: bool = False) -> torch.Tensor:
    """The F x F matrix mix_frames applies: its columns are the images of the unit videos."""
    basis = torch.eye(F, dtype=torch.float64).reshape(F, 1, F, 1, 1)
    return mix_frames(basis, rho, inverse=inverse).reshape(F, F).T


@pytest.mark.parametrize("rho", [0.0, 0.3, 0.9])
def test_the_mixing_is_the_square_root_of_the_covariance_and_inverts(rho):
    m = as_matrix(rho)
    torch.testing.assert_close(m @ m.T, covariance(rho), atol=1e-12, rtol=0)
    torch.testing.assert_close(m, m.T)
    torch.testing.assert_close(as_matrix(rho, inverse=True) @ m, torch.eye(F, dtype=m.dtype))
    x = torch.randn(3, 2, F, 5, 5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(mix_frames(mix_frames(x, rho), rho, inverse=True), x)


def test_a_rho_per_item_mixes_each_item_by_its_own():
    x = torch.randn(2, 1, F, 3, 3, generator=torch.Generator().manual_seed(1))
    both = mix_frames(x, torch.tensor([0.0, 0.6]))
    torch.testing.assert_close(both[0], x[0])
    torch.testing.assert_close(both[1], mix_frames(x[1:], 0.6)[0])
    with pytest.raises(ValueError, match=r"in \[0, 1\)"):
        mix_frames(x, 1.0)


def test_correlated_noise_has_the_covariance():
    n = correlated_noise((50_000, 1, F, 2, 2), 0.6, torch.Generator().manual_seed(2))
    flat = n.permute(0, 3, 4, 1, 2).reshape(-1, F).double()
    # 200,000 draws: each entry's standard error is below 0.004
    torch.testing.assert_close(flat.T @ flat / len(flat), covariance(0.6), atol=0.02, rtol=0)


class ExactVideoDenoiser:
    """E[x0 | x_t] of Gaussian videos x0 ~ N(0, C) (per position, over F frames) under
    x_t = sqrt(abar) x0 + sqrt(1 - abar) n with n ~ N(0, S): a sqrt(abar) C (abar C + (1 -
    abar) S)^-1 x_t (the Gaussian conditional mean); it predicts x0."""

    def __init__(self, c: torch.Tensor, rho: float, schedule: NoiseSchedule) -> None:
        self.c, self.s, self.schedule = c, covariance(rho), schedule

    def __call__(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = float(self.schedule.abar_at(t[:1].double().cpu())[0])
        gain = abar**0.5 * self.c @ torch.linalg.inv(abar * self.c + (1 - abar) * self.s)
        v = x_t.double().reshape(len(x_t), F)
        return (v @ gain.T).reshape(x_t.shape).to(x_t.dtype)


@pytest.mark.parametrize("method", ["dpmpp_2m", "ddpm"])
def test_sampling_through_the_change_of_variables_draws_the_data_distribution(method):
    """Run in y = M^-1 x with white noise, a denoiser of the correlated process gives videos
    with the data covariance C; read as white noise (rho taken as 0) it would not."""
    rho = 0.8
    schedule = NoiseSchedule("cosine", 1000)
    a = torch.tensor([[1.0, 0.9, 0.7, 0.4], [0.0, 0.4, 0.5, 0.6], [0.0, 0.0, 0.4, 0.5],
                      [0.0, 0.0, 0.0, 0.3]], dtype=torch.float64)  # fmt: skip
    c = 0.25 * a.T @ a  # frames of one video strongly correlated, as a moving digit's are
    oracle = ExactVideoDenoiser(c, rho, schedule)
    n = 6000

    def draw(denoiser) -> torch.Tensor:
        y = sample(denoiser, (n, 1, F, 1, 1), schedule, method=method, steps=60,
                   prediction="x0", generator=torch.Generator().manual_seed(3),
                   clip_x0=None, progress=False)  # fmt: skip
        return mix_frames(y, rho).reshape(n, F).double()

    x = draw(FrameCorrelatedDenoiser(oracle, rho))
    # the sample covariance of 6,000 draws: standard errors about 0.005 here
    torch.testing.assert_close(x.T @ x / n, c, atol=0.03, rtol=0)
    wrong = draw(oracle)  # the same net fed y as if it were x
    assert (wrong.T @ wrong / n - c).abs().max() > 0.1
