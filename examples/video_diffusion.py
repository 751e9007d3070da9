"""Sections 13.4.1 and 13.4.3: a space-time U-Net on moving digits, and temporal consistency.

1. Draws moving digits (Moving MNIST's recipe over the built-in digits) and checks one
   bounce against the rule ``p' = 2R - p'`` by hand.
2. Builds a factorised space-time U-Net (Ho et al. 2022) from an image U-Net and checks that,
   with its temporal layers freshly zero-initialised, it computes exactly the image model
   frame by frame; then that masking temporal mixing keeps a change in one frame out of the
   others.
3. Trains a tiny caption-conditioned video model for ``--minutes`` (default 0.5: the videos are
   rough; ``--checkpoint`` takes one written by ``synesthesia train video --minutes 20``),
   writes ``--out``/samples.gif and the frame strip ``--out``/samples.png, and measures the
   motion of the centre of ink against the prompt (no digit evaluator needed). With
   ``--init-from`` a ``synesthesia train text2image`` pixel checkpoint starts it: the
   image model on every frame, temporal layers learnt on top.

    python examples/video_diffusion.py
    python examples/video_diffusion.py --checkpoint runs/video/checkpoint
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from synesthesia.data.images import load_image_splits
from synesthesia.data.moving_digits import (
    MovingDigitsConfig,
    bounce_trajectory,
    make_videos,
    parse_prompt,
)
from synesthesia.metrics.video import centre_of_ink, motion_agrees, smoothness
from synesthesia.nets.unet import UNet, unet_preset
from synesthesia.nets.video_unet import VideoUNet, VideoUNetConfig
from synesthesia.pipelines.text2video import (
    TextToVideoPipeline,
    save_frame_strip,
    save_videos_gif,
)
from synesthesia.pipelines.text2video_train import VideoTrainOptions, train_text_to_video


def moving_digits(train) -> None:
    world = MovingDigitsConfig()  # 32 x 32, 8 frames: the digit's corner lies in [0, 4]
    vids = make_videos(train, 4, world, seed=0)
    for text, pos in zip(vids.captions, vids.positions):
        print(f"{text!r}: corner x {pos[:, 0].tolist()}, y {pos[:, 1].tolist()}")
    # by hand, room R = 4, from 3 at +2: 5 > R reflects to 2R - 5 = 3 (velocity -2), then 1
    assert bounce_trajectory(3, 2, 3, world.room).tolist() == [3, 3, 1]
    track = centre_of_ink(vids.videos)
    assert all(motion_agrees(c, parse_prompt(t)) for c, t in zip(track, vids.captions))
    print(f"real videos: motion agrees with every caption, smoothness {smoothness(track):.1f}")


def factorised_unet() -> None:
    torch.manual_seed(0)
    spatial = unet_preset("tiny", image_size=32, num_classes=10)
    image = UNet(spatial).eval()
    with torch.no_grad():  # give the image model's zero-initialised output layers weights
        for p in image.parameters():
            if p.abs().max() == 0:
                p.normal_(std=0.05)
    video = VideoUNet(VideoUNetConfig(spatial, frames=4)).eval()
    video.unet.load_state_dict(image.state_dict())  # the image model's names, unchanged
    x = torch.randn(2, 1, 4, 32, 32)
    t, labels = torch.tensor([100.0, 600.0]), torch.tensor([3, 7])
    with torch.no_grad():
        out = video(x, t, labels=labels)
        frames = x.transpose(1, 2).reshape(8, 1, 32, 32)
        ref = image(frames, t.repeat_interleave(4), labels.repeat_interleave(4))
    same = torch.equal(out, ref.reshape(2, 4, 1, 32, 32).transpose(1, 2))
    print(f"a fresh video model equals the image model frame by frame: {same}")
    assert same
    with torch.no_grad():  # now "train" the temporal layers: frames start to talk
        for p in video.temporal.parameters():
            p.normal_(std=0.05)
        y = x.clone()
        y[:, :, 0] += 1.0
        mixed = (video(x, t, labels=labels) - video(y, t, labels=labels))[:, :, 1:].abs().max()
        ind = torch.tensor([True, True])
        apart = video(x, t, labels=labels, independent=ind)
        apart = (apart - video(y, t, labels=labels, independent=ind))[:, :, 1:].abs().max()
    print(f"change frame 0: other frames move by {mixed:.3f} mixed, {apart:.3f} masked")
    assert mixed > 0 and apart == 0


def load_or_train(args, train) -> TextToVideoPipeline:
    if args.checkpoint:
        return TextToVideoPipeline.from_pretrained(args.checkpoint)
    options = VideoTrainOptions(
        out_dir=str(Path(args.out) / "run"),
        preset="tiny",
        minutes=args.minutes,
        batch_size=8,
        warmup_steps=5,
        progress=False,
        init_from=args.init_from,
    )
    pipe, result, _ = train_text_to_video(train, options)
    print(f"trained {result.step} steps in {result.wall_s:.0f} s (consistency weight 0.5)")
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None, help="a text2video checkpoint folder")
    parser.add_argument("--minutes", type=float, default=0.5, help="training budget otherwise")
    parser.add_argument(
        "--init-from",
        default=None,
        help="start the trained model from this text2image (pixel) checkpoint (its U-Net layout)",
    )
    parser.add_argument("--out", default="runs/example-video")
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    train, _ = load_image_splits("mnist5k")
    moving_digits(train)
    factorised_unet()
    pipe = load_or_train(args, train)
    prompts = ["a 3 moving left fast", "a seven moving up slowly", "a 0 moving right fast"]
    videos = pipe(prompts, num_inference_steps=10, output_type="pt",
                  generator=torch.Generator().manual_seed(0))  # fmt: skip
    out = Path(args.out)
    print(f"wrote {save_videos_gif(videos, out / 'samples.gif', nrow=3)} and "
          f"{save_frame_strip(videos, out / 'samples.png')}")  # fmt: skip
    agree = [motion_agrees(c, parse_prompt(p)) for c, p in zip(centre_of_ink(videos), prompts)]
    print(f"motion agrees with the prompt in {int(np.sum(agree))} of {len(prompts)} samples")


if __name__ == "__main__":
    main()
