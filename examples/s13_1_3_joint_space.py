"""Section 13.1.3: a joint embedding space for images, captions and speech.

About half a minute on one CPU thread: ``--n-speech`` spoken digits are synthesised with
eSpeak NG (cached in ``$SYNESTHESIA_CACHE``), then ``--steps`` of contrastive training.

Images are the anchor: captions are trained against images, and speech against images
(ImageBind's layout, Girdhar et al. 2023); captions and speech never meet in training.

1. Retrieval in both directions (``bidirectional_retrieval``), first on a 3 x 3 similarity
   table whose ranks are worked out by hand (ties count against the query).
2. On held-out voices: spoken digit -> image of that digit and back, against chance.
3. Captions and speech through the images: held-out speech is classified from the text
   prompts alone, a pairing the model was never trained on (printed against chance; after
   a short run it may still be near chance, and it is reported as measured).
4. The map of the space: ``--out``/joint_space.png (PCA of images, speech and the prompts).

For real quality: ``synesthesia train clip --minutes 5`` (96.2 % speech -> image R@1 on
held-out voices, ``benchmarks/RESULTS-clip.md``) and ``--checkpoint`` for its folder.

    python examples/s13_1_3_joint_space.py [--steps 100] [--n-speech 300]
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from synesthesia.multimodal import JointEmbeddingModel, retrieval_metrics
from synesthesia.multimodal.evaluate import build_world_for, evaluate_clip
from synesthesia.multimodal.train import ClipTrainOptions, train_clip


def ranks_by_hand() -> None:
    sim = torch.tensor([[0.9, 0.1, 0.9], [0.2, 0.3, 0.8], [0.5, 0.6, 0.4]])
    # query i's relevant item is item i. Query 0: item 2 ties with it at 0.9 and counts
    # against it: rank 2; query 1: item 2 (0.8) beats 0.3: rank 2; query 2: two beat it: rank 3
    out = retrieval_metrics(sim, ks=(1, 2))
    print(
        f"3 x 3 table: R@1 {out['R@1']:.3f}, R@2 {out['R@2']:.3f}, mean rank "
        f"{out['mean_rank']:.3f} (by hand: 0, 2/3, 7/3)"
    )
    assert out["R@1"] == 0 and math.isclose(out["R@2"], 2 / 3)
    assert math.isclose(out["mean_rank"], 7 / 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="contrastive training steps")
    parser.add_argument("--n-speech", type=int, default=300, help="eSpeak clips to synthesise")
    parser.add_argument("--checkpoint", default=None, help="a `train clip` checkpoint folder")
    parser.add_argument("--out", type=Path, default=Path("runs") / "example-joint-space")
    args = parser.parse_args()
    ranks_by_hand()

    if args.checkpoint:
        model = JointEmbeddingModel.from_pretrained(args.checkpoint)
        world = build_world_for(model, n_speech=args.n_speech, progress=False)
    else:
        options = ClipTrainOptions(
            out_dir=str(args.out),
            modalities=("image", "text", "speech"),
            max_steps=args.steps,
            n_speech=args.n_speech,
            precision="fp32",
            progress=False,
        )
        model, result, world = train_clip(options)
        print(f"trained {result.step} steps in {result.wall_s:.0f} s")
    scores = evaluate_clip(
        model.eval(), world, baselines=False, plot_path=args.out / "joint_space.png"
    )

    voices = world.speech["synthetic"]["val"]
    n = len(voices)
    speech_image = scores["retrieval"]["speech_image"]
    for direction, metrics in speech_image.items():
        print(
            f"{direction}: R@1 {metrics['R@1']:.1%}, R@5 {metrics['R@5']:.1%} "
            f"({n} clips of {len(scores['val_voices'])} held-out voices)"
        )
    # chance: about a tenth of the gallery is the digit asked for; binomial margins of 2 sd
    # over the few held-out clips as queries, 4 sd over the 1,000 images as queries
    images = scores["retrieval"]["speech_image_n_images"]
    assert speech_image["speech_to_image"]["R@1"] > 0.1 + 2 * math.sqrt(0.09 / n)
    assert speech_image["image_to_speech"]["R@1"] > 0.1 + 4 * math.sqrt(0.09 / images)
    text_speech = scores["zero_shot"]["speech_from_text_prompts"]
    print(
        f"held-out speech named from text prompts (never trained together): "
        f"{text_speech:.1%} of {n} clips (chance 10 %)"
    )
    print(f"wrote {scores['plot']}")


if __name__ == "__main__":
    main()
