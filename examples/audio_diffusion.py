"""Audio diffusion (chapter 13.4.2): speak a digit when asked, on a CPU.

1. The digit world's spoken digits: eSpeak NG voices, 1 s at 8 kHz, loudness-normalised;
   the held-out voices never enter training.
2. The mel domain: a clip becomes 64 log-mel bands x 63 frames (what the 1-D U-Net draws),
   and Griffin-Lim turns mel frames back into a waveform; the reconstruction error is
   printed against a baseline of white noise of the same power.
3. A prompt-conditioned 1-D U-Net (the project's text encoder, cross-attention) trained with
   the one trainer for --minutes.
4. ``pipe("seven")``: WAV files and a spectrogram figure in --out.
5. The SC09 protocol's Inception Score checked by hand on a small probability table.

    python examples/audio_diffusion.py --minutes 2 --out runs/audio-example
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from synesthesia.data.audio_domain import AudioDomain, fit_level  # noqa: E402
from synesthesia.data.spoken_digits import espeak_digits  # noqa: E402
from synesthesia.metrics.audio import inception_score  # noqa: E402
from synesthesia.pipelines.text2audio import plot_spectrogram, save_wav  # noqa: E402
from synesthesia.pipelines.text2audio_train import (  # noqa: E402
    AudioTrainOptions,
    train_text_to_audio,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=2.0, help="training time")
    p.add_argument("--n-espeak", type=int, default=200, help="synthetic clips")
    p.add_argument("--out", type=Path, default=Path("runs") / "audio-example")
    args = p.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))

    # 1. data, with held-out voices
    splits = espeak_digits(args.n_espeak)
    train, val = splits["train"], splits["val"]
    shape = tuple(train.waveforms.shape)
    print(f"{len(train)} training clips, {len(val)} of held-out voices; shape {shape}")
    assert not set(train.speakers) & set(val.speakers)

    # 2. the mel domain and its vocoder
    dom = fit_level(AudioDomain(), train.waveforms)
    clip = train.waveforms[:1]
    x = dom.encode(clip)
    back = dom.decode(x)
    noise = torch.randn(clip.shape, generator=torch.Generator().manual_seed(0)) * clip.std()
    target = dom.log_mel(clip)
    loud = target > target.max() - math.log(1e3)  # within 30 dB of the peak
    to_db = 10 / math.log(10)
    err = float((dom.log_mel(back) - target)[loud].abs().mean()) * to_db
    base = float((dom.log_mel(noise) - target)[loud].abs().mean()) * to_db
    print(f"mel domain {tuple(x.shape[1:])}; Griffin-Lim error {err:.2f} dB (noise: {base:.2f} dB)")
    assert err < base

    # 3. train
    options = AudioTrainOptions(
        out_dir=str(args.out), preset="mel", minutes=args.minutes, batch_size=32, progress=False
    )
    pipe, result, _ = train_text_to_audio(train, options)
    print(f"trained {result.step} steps in {result.wall_s:.0f} s")

    # 4. speak "seven"
    clips = pipe("seven", num_images_per_prompt=2, generator=torch.Generator().manual_seed(0))
    assert clips.shape == (2, pipe.samples) and np.abs(clips).max() <= 1
    for i, c in enumerate(clips):
        save_wav(args.out / f"7_{i:03d}.wav", c, pipe.sample_rate)
    fig, axes = plt.subplots(1, 2, figsize=(8, 3))
    plot_spectrogram(clips[0], pipe.sample_rate, ax=axes[0], title='generated "seven"')
    seven = train.waveforms[int(torch.nonzero(train.labels == 7)[0])]
    plot_spectrogram(seven.numpy(), pipe.sample_rate, ax=axes[1], title="an eSpeak seven")
    fig.tight_layout()
    fig.savefig(args.out / "seven.png")
    print(f"wrote {args.out}/7_000.wav, 7_001.wav and seven.png ({pipe.sample_rate} Hz)")

    # 5. IS by hand: rows [1, 0] and [1/2, 1/2], marginal [3/4, 1/4]
    by_hand = math.exp((math.log(4 / 3) + 0.5 * math.log(2 / 3) + 0.5 * math.log(2)) / 2)
    assert abs(inception_score([[1.0, 0.0], [0.5, 0.5]]) - by_hand) < 1e-12
    print(f"Inception Score of the 2 x 2 table: {by_hand:.4f} (by hand and by the library)")


if __name__ == "__main__":
    main()
