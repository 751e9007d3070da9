"""Prediction conversions, Min-SNR weights and the training loss against hand computations."""

import pytest
import torch

from synesthesia.diffusion import (
    NoiseSchedule,
    convert_prediction,
    diffusion_loss,
    loss_weight,
    make_noise,
)


@pytest.fixture(scope="module")
def schedule():
    return NoiseSchedule("cosine", 1000)


def test_conversions_match_definitions_and_round_trip_at_every_t(schedule):
    T = schedule.num_timesteps
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(T, 4, generator=g, dtype=torch.float64)
    eps = torch.randn(T, 4, generator=g, dtype=torch.float64)
    abar = schedule.alphas_cumprod
    a, s = abar.sqrt()[:, None], (1 - abar).sqrt()[:, None]
    x_t = a * x0 + s * eps
    v = a * eps - s * x0  # Salimans & Ho 2022
    truth = {"eps": eps, "x0": x0, "v": v}
    for src in truth:
        for dst in truth:
            got = convert_prediction(truth[src], src, dst, x_t, abar)
            # x0 from eps loses precision where abar is tiny (division by sqrt(abar) ~ 1e-3)
            tol = 1e-6 if (src == "eps" and dst != "eps") else 1e-9
            assert torch.allclose(got, truth[dst], atol=tol, rtol=0), (src, dst)
    # round trip eps -> v -> x0 -> eps
    back = convert_prediction(
        convert_prediction(convert_prediction(eps, "eps", "v", x_t, abar), "v", "x0", x_t, abar),
        "x0",
        "eps",
        x_t,
        abar,
    )
    assert torch.allclose(back, eps, atol=1e-6)


def test_eps_to_x0_is_undefined_at_zero_terminal_snr():
    zt = NoiseSchedule("linear", 100, zero_terminal_snr=True)
    x = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="zero terminal SNR"):
        convert_prediction(x, "eps", "x0", x, zt.alphas_cumprod[-1:])
    v = torch.tensor([[0.3, -0.2]])
    assert torch.allclose(convert_prediction(v, "v", "x0", x, zt.alphas_cumprod[-1:]), -v)


def test_min_snr_weights_make_the_three_objectives_agree(schedule):
    """The same x0 error costs the same under eps, x0 and v losses: min(SNR, gamma) |dx0|^2."""
    g = torch.Generator().manual_seed(1)
    B = 64
    x0 = torch.randn(B, 3, generator=g, dtype=torch.float64)
    noise = torch.randn(B, 3, generator=g, dtype=torch.float64)
    t = torch.randint(0, 1000, (B,), generator=g)
    err = 0.1 * torch.randn(B, 3, generator=g, dtype=torch.float64)  # error of the x0 estimate
    abar = schedule.alphas_cumprod[t][:, None]
    a, s = abar.sqrt(), (1 - abar).sqrt()
    x_t = a * x0 + s * noise
    x0_hat = x0 + err

    def denoiser_for(prediction):
        def den(x, tt):
            return convert_prediction(x0_hat, "x0", prediction, x_t, abar[:, 0])

        return den

    snr = (abar / (1 - abar))[:, 0]
    for gamma in (5.0, None):
        losses = {
            p: diffusion_loss(
                denoiser_for(p),
                x0,
                schedule,
                prediction=p,
                min_snr_gamma=gamma,
                t=t,
                noise=noise,
                reduction="none",
            )  # fmt: skip
            for p in ("eps", "x0", "v")
        }
        if gamma is not None:
            expected = torch.clamp(snr, max=gamma) * err.pow(2).mean(1)
            for p, loss in losses.items():
                assert torch.allclose(loss.double(), expected, rtol=1e-5), p
        else:  # plain MSE: eps weighs x0 errors by SNR, v by SNR + 1
            assert torch.allclose(losses["x0"].double(), err.pow(2).mean(1), rtol=1e-5)
            assert torch.allclose(losses["eps"].double(), snr * err.pow(2).mean(1), rtol=1e-5)
            assert torch.allclose(losses["v"].double(), (snr + 1) * err.pow(2).mean(1), rtol=1e-5)


def test_loss_weight_values_by_hand():
    snr = torch.tensor([0.5, 5.0, 50.0], dtype=torch.float64)
    assert torch.allclose(loss_weight(snr, "eps", 5.0), torch.tensor([1.0, 1.0, 0.1]).double())
    assert torch.allclose(loss_weight(snr, "x0", 5.0), torch.tensor([0.5, 5.0, 5.0]).double())
    assert torch.allclose(
        loss_weight(snr, "v", 5.0), torch.tensor([0.5 / 1.5, 5 / 6, 5 / 51]).double()
    )
    with pytest.raises(ValueError, match="min_snr_gamma"):
        loss_weight(snr, "eps", 0.0)


def test_diffusion_loss_by_hand_and_errors(schedule):
    x0 = torch.ones(2, 1, 2, 2)
    noise = torch.full_like(x0, 0.5)
    t = torch.tensor([0, 999])
    seen = {}

    def den(x, tt, labels):
        seen["t"], seen["labels"] = tt, labels
        return torch.zeros_like(x)

    loss = diffusion_loss(
        den, x0, schedule, t=t, noise=noise, cond={"labels": torch.tensor([3, 4])}
    )
    assert loss.item() == pytest.approx(0.25)  # target eps = 0.5 everywhere, prediction 0
    assert seen["t"].dtype == torch.float32 and seen["labels"].tolist() == [3, 4]
    zt = NoiseSchedule("linear", 1000, zero_terminal_snr=True)
    with pytest.raises(ValueError, match="prediction='v'"):
        diffusion_loss(den, x0, zt, cond={"labels": None})
    with pytest.raises(ValueError, match="denoiser returned"):
        diffusion_loss(lambda x, tt: x[:, :, :1], x0, schedule)
    with pytest.raises(ValueError, match="prediction"):
        diffusion_loss(den, x0, schedule, prediction="score")


def test_offset_noise_adds_per_channel_variance():
    x0 = torch.zeros(4000, 2, 8, 8)
    g = torch.Generator().manual_seed(0)
    plain = make_noise(x0, 0.0, g).mean(dim=(2, 3))
    offset = make_noise(x0, 0.5, g).mean(dim=(2, 3))
    assert plain.var().item() == pytest.approx(1 / 64, rel=0.1)
    assert offset.var().item() == pytest.approx(1 / 64 + 0.25, rel=0.1)
    with pytest.raises(ValueError, match="offset_noise"):
        make_noise(torch.zeros(3, 2), 0.1, g)


def test_loss_is_reproducible_with_a_generator(schedule):
    x0 = torch.randn(8, 1, 4, 4)

    def den(x, t):
        return 0.5 * x

    a = diffusion_loss(den, x0, schedule, generator=torch.Generator().manual_seed(3))
    b = diffusion_loss(den, x0, schedule, generator=torch.Generator().manual_seed(3))
    assert a.item() == b.item()
