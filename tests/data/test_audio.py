import math

import numpy as np
import pytest
import torch

from synesthesia.data.audio import LogMelConfig, fix_length, log_mel, mel_filterbank, resample


def _tone(freq: float, sr: int, seconds: float = 0.5) -> torch.Tensor:
    t = torch.arange(int(sr * seconds), dtype=torch.float64) / sr
    return (0.5 * torch.sin(2 * math.pi * freq * t)).float()


def _peak_hz(x: torch.Tensor, sr: int) -> float:
    spec = np.abs(np.fft.rfft(x.numpy() * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / sr)[spec.argmax()])


@pytest.mark.parametrize(("sr_in", "sr_out"), [(8000, 16000), (22050, 16000), (16000, 8000)])
def test_resampling_preserves_a_tones_frequency_and_duration(sr_in, sr_out):
    x = _tone(440.0, sr_in, 1.0)
    y = resample(x, sr_in, sr_out)
    assert y.dtype == torch.float32
    assert len(y) == pytest.approx(sr_out, abs=1)
    assert _peak_hz(y, sr_out) == pytest.approx(440.0, abs=1.5)
    assert float(y.abs().max()) == pytest.approx(0.5, abs=0.02)


def test_resample_batched_and_identity():
    x = torch.stack([_tone(300.0, 8000), _tone(600.0, 8000)])
    y = resample(x, 8000, 16000)
    assert y.shape == (2, 8000)
    assert torch.equal(resample(x, 8000, 8000), x)
    with pytest.raises(ValueError, match="sample rates"):
        resample(x, 0, 16000)


def test_log_mel_matches_librosa():
    librosa = pytest.importorskip("librosa")
    cfg = LogMelConfig()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12_345, generator=g) * 0.1
    ours = log_mel(x, cfg.sample_rate, cfg)
    ref = librosa.feature.melspectrogram(
        y=x.numpy().astype(np.float64),
        sr=cfg.sample_rate,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop,
        win_length=cfg.win_length,
        window="hann",
        center=True,
        pad_mode="constant",
        power=2.0,
        n_mels=cfg.n_mels,
        fmin=cfg.f_min,
        fmax=cfg.f_max,
    )
    assert ours.shape == ref.shape == (cfg.n_mels, 1 + 12_345 // cfg.hop)
    np.testing.assert_allclose(ours.numpy(), np.log(ref + cfg.eps), atol=2e-4)


def _slaney_hz_to_mel(f: float) -> float:
    # Slaney's Auditory Toolbox: linear below 1 kHz (200/3 Hz per mel), logarithmic above
    if f < 1000:
        return f / (200 / 3)
    return 15.0 + math.log(f / 1000) / (math.log(6.4) / 27)


def _slaney_mel_to_hz(m: float) -> float:
    if m < 15:
        return m * 200 / 3
    return 1000 * math.exp((m - 15) * math.log(6.4) / 27)


def test_filterbank_centres_follow_the_hand_computed_mel_scale():
    cfg = LogMelConfig(n_fft=4096, win_length=4096)  # fine frequency grid
    fb = mel_filterbank(cfg)
    assert fb.shape == (cfg.n_mels, cfg.n_fft // 2 + 1)
    lo, hi = _slaney_hz_to_mel(cfg.f_min), _slaney_hz_to_mel(cfg.f_max)
    edges = [
        _slaney_mel_to_hz(lo + (hi - lo) * k / (cfg.n_mels + 1)) for k in range(cfg.n_mels + 2)
    ]
    bin_hz = cfg.sample_rate / cfg.n_fft
    peaks = fb.argmax(dim=1).numpy() * bin_hz
    np.testing.assert_allclose(peaks, edges[1:-1], atol=bin_hz)
    # Slaney normalisation: each triangle has height 2 / (upper edge - lower edge)
    heights = 2 / (np.array(edges[2:]) - np.array(edges[:-2]))
    np.testing.assert_allclose(fb.max(dim=1).values.numpy(), heights, rtol=0.05)


def test_a_tone_lights_the_band_around_its_frequency():
    cfg = LogMelConfig()
    m = log_mel(_tone(1000.0, 16000), 16000, cfg)
    band = int(m.mean(dim=1).argmax())
    lo, hi = _slaney_hz_to_mel(cfg.f_min), _slaney_hz_to_mel(cfg.f_max)
    centres = [_slaney_mel_to_hz(lo + (hi - lo) * k / (cfg.n_mels + 1)) for k in range(1, 41)]
    assert band == int(np.argmin(np.abs(np.array(centres) - 1000.0)))


def test_8khz_and_22khz_renditions_meet():
    cfg = LogMelConfig()
    sig = lambda sr: _tone(700.0, sr) + _tone(1900.0, sr)  # noqa: E731
    a = log_mel(sig(8000), 8000, cfg)
    b = log_mel(sig(22050), 22050, cfg)
    assert a.shape == b.shape
    loud = b > b.max() - 6.0  # bins within 6 nats of the peak
    assert (a[loud] - b[loud]).abs().median() < 0.1
    far = log_mel(_tone(300.0, 8000) + _tone(3000.0, 8000), 8000, cfg)
    assert (far[loud] - b[loud]).abs().median() > 2.0


def test_log_mel_shapes_batch_list_and_short_input():
    cfg = LogMelConfig()
    x = torch.zeros(2, 3200)
    assert log_mel(x, 16000, cfg).shape == (2, 40, 21)
    out = log_mel([torch.zeros(1600), torch.zeros(3200)], 16000, cfg)
    assert [o.shape[-1] for o in out] == [11, 21]
    assert torch.allclose(out[0], torch.full_like(out[0], cfg.floor))
    assert log_mel(torch.zeros(10), 16000, cfg).shape == (40, 2)
    with pytest.raises(ValueError, match="1-D"):
        log_mel(torch.zeros(1, 2, 100), 16000, cfg)


def test_fix_length_pads_with_silence_and_crops():
    f = torch.arange(10.0).reshape(1, 10)
    assert torch.equal(fix_length(f, 4), f[:, :4])
    assert torch.equal(fix_length(f, 4, align="center"), f[:, 3:7])
    p = fix_length(f, 14, align="center")
    assert p.shape == (1, 14) and torch.equal(p[:, 2:12], f)
    assert p[0, 0] == LogMelConfig().floor
    assert fix_length(f, 12, pad_value=-1.0)[0, -1] == -1.0
    with pytest.raises(ValueError, match="align"):
        fix_length(f, 4, align="end")


def test_config_validation_and_round_trip():
    cfg = LogMelConfig(n_mels=64, f_max=None)
    assert LogMelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="f_max"):
        LogMelConfig(f_max=9000.0)
    with pytest.raises(ValueError, match="win_length"):
        LogMelConfig(win_length=1024)
    with pytest.raises(ValueError, match="unknown"):
        LogMelConfig.from_dict({"nmels": 3})


def test_a_list_of_clips_equals_clip_by_clip():
    g = torch.Generator().manual_seed(1)
    clips = [torch.randn(n, generator=g) for n in (100, 5000, 12345, 300, 16000)]
    for sr in (8000, 16000, 22050):
        together = log_mel(clips, sr)
        for clip, feats in zip(clips, together):
            alone = log_mel(clip, sr)
            assert feats.shape == alone.shape
            assert torch.allclose(feats, alone, atol=1e-5)
