"""Builders shared by the audio tests: a small fake FSDD folder and a tiny untrained pipeline.

The fake FSDD folder holds tones, not speech: digit ``d`` is a tone of ``300 + 100 d`` Hz
under a speaker-specific envelope, in FSDD's ``{digit}_{speaker}_{index}.wav`` layout at
8 kHz, with the held-out speaker ``nicolas`` among four.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

SPEAKERS = ("george", "jackson", "nicolas", "yweweler")
REAL_FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "datasets" / "fsdd"


def fake_fsdd(folder: Path, per_digit: int = 2, seconds: float = 0.5) -> Path:
    """Write a fake FSDD recordings folder (4 speakers, ``per_digit`` clips per digit)."""
    import soundfile as sf

    folder.mkdir(parents=True, exist_ok=True)
    rate = 8_000
    t = np.arange(int(rate * seconds)) / rate
    rng = np.random.default_rng(0)
    for s, speaker in enumerate(SPEAKERS):
        envelope = np.sin(np.pi * t / seconds) ** (1 + s)
        for digit in range(10):
            for i in range(per_digit):
                tone = np.sin(2 * np.pi * (300 + 100 * digit) * t) * envelope * 0.5
                x = tone + 0.01 * rng.standard_normal(len(t))
                sf.write(str(folder / f"{digit}_{speaker}_{i}.wav"), x, rate, subtype="PCM_16")
    return folder


def tiny_audio_pipe(domain: str = "mel", samples: int = 2_000, seed: int = 0):
    """An untrained text-to-audio pipeline (tiny U-Net, random output layer so that the
    network's output depends on its input and prompt)."""
    from synesthesia.data.audio_domain import AudioDomain
    from synesthesia.data.spoken_digits import audio_vocabulary
    from synesthesia.diffusion import NoiseSchedule
    from synesthesia.nets.audio_unet import audio_unet_preset
    from synesthesia.nets.encoders import TextEncoderConfig
    from synesthesia.nets.tokenizer import WordTokenizer
    from synesthesia.pipelines.text2audio import TextToAudioPipeline, build_audio_model

    torch.manual_seed(seed)
    dom = AudioDomain(kind=domain, samples=samples, griffin_lim_iters=4)
    tok = WordTokenizer(audio_vocabulary(), max_length=8)
    text = TextEncoderConfig(vocab_size=len(tok), dim=16, depth=1, heads=2, max_length=8)
    unet = audio_unet_preset(
        "tiny",
        in_channels=dom.channels,
        length=dom.length,
        context_dim=16,
        pooled_dim=16,
        cross_attention_levels=(1,),
    )
    model = build_audio_model(unet, text)
    for module in (model.unet.conv_out, *[b.conv2 for lvl in model.unet.up for b in lvl.blocks]):
        torch.nn.init.normal_(module.weight, std=0.05)
    for lvl in model.unet.up:
        for cross in lvl.cross:
            if hasattr(cross, "attn"):
                torch.nn.init.normal_(cross.attn.proj.weight, std=0.05)
    torch.nn.init.normal_(model.unet.mid_cross.attn.proj.weight, std=0.05)
    return TextToAudioPipeline(model, tok, dom, NoiseSchedule("cosine", 100), precision="fp32")
