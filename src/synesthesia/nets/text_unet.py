"""A U-Net that reads a prompt: text-encoder tokens through cross-attention (Rombach et al. 2022).

:class:`TextConditionedUNet` holds the text encoder and the denoising U-Net as one module, so
that one trainer trains them jointly (or keeps a frozen text tower, as Stable Diffusion keeps
CLIP's) and one safetensors file holds them. For latent diffusion it also carries the frozen
autoencoder, so the pipeline folder is complete; the autoencoder takes no part in the forward
pass (training reads pre-encoded latents; the pipeline decodes at the end).

Conditioning (Rombach et al. 2022, sec. 3.3; Saharia et al. 2022, sec. 2.2): the prompt's
token features ``context`` (B, L, D) are the keys and values of every cross-attention block,
padding tokens masked out (``context_mask``, True where padded); their mean over the real
tokens (``pooled``) joins the time embedding. The empty prompt (``[CLS]`` only) is the null
condition of classifier-free guidance.
"""

from __future__ import annotations

import torch
from torch import nn

from synesthesia.nets.encoders import TextEncoder
from synesthesia.nets.unet import UNet


class TextConditionedUNet(nn.Module):
    """``model(x_t, t, ids=..., mask=...)`` or ``model(x_t, t, context=..., context_mask=...,
    pooled=...)`` -> the U-Net's prediction.

    Args:
        unet: a :class:`~synesthesia.nets.unet.UNet` with ``context_dim`` (and optionally
            ``pooled_dim``) equal to the text encoder's width, and no class labels.
        text_encoder: a :class:`~synesthesia.nets.encoders.TextEncoder`.
        freeze_text: keep the text encoder's weights fixed (a pretrained tower).
        autoencoder: the frozen latent autoencoder of a latent model (None in pixel space).
    """

    def __init__(
        self,
        unet: UNet,
        text_encoder: TextEncoder,
        freeze_text: bool = False,
        autoencoder: nn.Module | None = None,
    ) -> None:
        super().__init__()
        cfg = unet.config
        width = text_encoder.out_dim
        if cfg.context_dim != width:
            raise ValueError(
                f"the U-Net's context_dim ({cfg.context_dim}) must equal the text encoder's "
                f"width ({width})"
            )
        if cfg.pooled_dim not in (None, width):
            raise ValueError(f"the U-Net's pooled_dim ({cfg.pooled_dim}) must be None or {width}")
        if cfg.num_classes is not None:
            raise ValueError("a text-conditioned U-Net takes no class labels (num_classes=None)")
        self.unet = unet
        self.text_encoder = text_encoder
        self.freeze_text = freeze_text
        if freeze_text:
            text_encoder.requires_grad_(False)
        self.autoencoder = autoencoder
        if autoencoder is not None:
            autoencoder.requires_grad_(False)
        self._frozen_eval()

    def _frozen_eval(self) -> None:
        if self.freeze_text:
            self.text_encoder.eval()
        if self.autoencoder is not None:
            self.autoencoder.eval()

    def train(self, mode: bool = True) -> TextConditionedUNet:
        """Train mode for the trained parts; frozen parts stay in eval mode."""
        super().train(mode)
        self._frozen_eval()
        return self

    @property
    def null_class(self) -> None:
        """No class labels: the null condition is the empty prompt."""
        return None

    def encode_text(self, ids: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"context", "context_mask", "pooled"}`` of token ids (B, L) and padding (B, L)."""
        if self.freeze_text:
            with torch.no_grad():
                tokens = self.text_encoder.encode_tokens(ids, mask)
        else:
            tokens = self.text_encoder.encode_tokens(ids, mask)
        pooled = TextEncoder.pool(tokens, mask)
        return {"context": tokens, "context_mask": mask, "pooled": pooled}

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        ids: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
        context_mask: torch.Tensor | None = None,
        pooled: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Give token ``ids`` and ``mask`` (training), or an encoded ``context`` (sampling,
        where the prompt is encoded once for every step)."""
        if context is None:
            if ids is None or mask is None:
                raise ValueError("pass ids and mask, or context and context_mask")
            cond = self.encode_text(ids, mask)
            context, context_mask, pooled = cond["context"], cond["context_mask"], cond["pooled"]
        if self.unet.config.pooled_dim is None:
            pooled = None
        return self.unet(x, t, context=context, context_mask=context_mask, pooled=pooled)
