"""Every example in examples/ runs to the end (with the shortest budgets it takes).

Each example is a subprocess, as a user runs it; its own checks (asserts, printed
comparisons against hand computations) must pass, so a failing example fails here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


def _argv(name: str, tmp: Path) -> list[str]:
    out = str(tmp / "run")
    return {
        "audio_diffusion.py": ["--minutes", "0.05", "--n-espeak", "60", "--out", out],
        "brain_ventriloquist.py": [str(tmp)],
        "class_to_image.py": ["--minutes", "0.05", "--out", out],
        "cross_attention.py": [],
        "latent_diffusion.py": ["--ae-minutes", "0.05", "--minutes", "0.05", "--out", out],
        "probes_ventriloquist.py": [str(tmp)],
        "text_to_image_conditioning.py": ["--minutes", "0.05", "--out", out],
        "video_diffusion.py": ["--minutes", "0.05", "--out", out],
        # one script per chapter section (examples/README.md)
        "s13_1_1_cross_modal.py": ["--steps", "80", "--out", out],
        "s13_1_2_clip.py": ["--steps", "80", "--out", out],
        "s13_1_3_joint_space.py": ["--steps", "80", "--n-speech", "150", "--out", out],
        "s13_1_4_alignment_grounding.py": ["--steps", "80", "--out", out],
        "s13_2_1_forward_reverse.py": ["--n", "10000"],
        "s13_2_2_score_matching.py": [],
        "s13_2_3_sampling.py": [],
        "s13_2_4_unet.py": [],
        "s13_3_1_leading_models.py": [],
        "s13_5_1_multisensory_areas.py": [],
        "s13_5_2_binding.py": [],
        "s13_5_3_hierarchical.py": ["--out", out],
    }[name]


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES.glob("*.py")))
def test_example_runs(name, tmp_path):
    env = {**os.environ, "SYNESTHESIA_CACHE": str(tmp_path / "cache"), "MPLBACKEND": "Agg"}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *_argv(name, tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
