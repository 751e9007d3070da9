"""The modality registry: one register_modality call adds a modality end to end."""

from dataclasses import dataclass, field

import pytest
import torch
from torch import nn

from synesthesia.errors import InputError
from synesthesia.multimodal.losses import info_nce
from synesthesia.multimodal.modalities import (
    LabelPool,
    Modality,
    get_modality,
    modality_names,
    register_modality,
    unregister_modality,
)
from synesthesia.multimodal.model import JointEmbeddingConfig, JointEmbeddingModel
from synesthesia.multimodal.retrieval import relevance_from_labels, retrieval_metrics
from synesthesia.multimodal.train import ClipData, ContrastiveObjective


@dataclass
class VectorEncoderConfig:
    dim: int = 8
    hidden: int = 16


@dataclass
class VectorSettings:
    encoder: VectorEncoderConfig = field(default_factory=VectorEncoderConfig)


class VectorEncoder(nn.Module):
    def __init__(self, config: VectorEncoderConfig) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(config.dim, config.hidden), nn.GELU())
        self.out_dim = config.hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _draw(bank: LabelPool, index, labels, generator, augment):
    return bank.items[bank.pick(labels, generator)]


# a toy "vector" modality: a noisy code of the label, drawn from a pool by class
VECTOR = Modality(
    name="vector",
    settings=VectorSettings,
    build_encoder=lambda s: VectorEncoder(s.encoder),
    bank=lambda world, split, options: None,
    draw=_draw,
)


@pytest.fixture
def vector():
    register_modality(VECTOR)
    yield VECTOR
    unregister_modality("vector")


CODES = torch.randn(2, 8, generator=torch.Generator().manual_seed(42))  # one code per class


def _vectors(n: int, generator: torch.Generator):
    labels = torch.arange(n) % 2
    return CODES[labels] + 0.3 * torch.randn(n, 8, generator=generator), labels


def _config() -> JointEmbeddingConfig:
    return JointEmbeddingConfig(
        modalities=("image", "vector"),
        embed_dim=8,
        towers={"image": {"encoder": {"channels": (8, 16)}}, "vector": {"encoder": {"dim": 8}}},
    )


def test_the_builtins_are_registered_and_unknown_names_are_refused():
    assert modality_names()[:3] == ("image", "text", "speech")
    with pytest.raises(InputError, match="unknown modality 'smell'"):
        get_modality("smell")
    with pytest.raises(InputError, match="unknown modality 'vector'"):
        JointEmbeddingConfig(modalities=("image", "vector"))
    with pytest.raises(ValueError, match="already registered"):
        register_modality(get_modality("image"))
    with pytest.raises(ValueError, match="one lower-case word"):
        register_modality(Modality("a,b", VectorSettings, VectorEncoder, None, _draw))


def test_one_entry_gives_a_model_that_saves_and_loads(vector, tmp_path):
    torch.manual_seed(0)
    model = JointEmbeddingModel(_config()).eval()
    x, _ = _vectors(6, torch.Generator().manual_seed(0))
    out = model({"image": torch.zeros(6, 1, 28, 28), "vector": x})
    assert out["vector"].shape == (6, 8) and set(model.logit_scales) == {"vector"}
    model.save_pretrained(tmp_path / "m")
    loaded = JointEmbeddingModel.from_pretrained(tmp_path / "m")
    assert loaded.config == model.config
    assert loaded.config.tower("vector") == VectorSettings(VectorEncoderConfig(dim=8))
    torch.testing.assert_close(loaded.embed("vector", x), model.embed("vector", x))


def test_the_objective_uses_the_entry_and_the_pair_trains(vector, bars):
    g = torch.Generator().manual_seed(0)
    images, labels = bars(64, g)
    vectors, vector_labels = _vectors(40, g)
    data = ClipData(labels, {"image": images, "vector": LabelPool(vectors, vector_labels)})
    torch.manual_seed(0)
    model = JointEmbeddingModel(_config())
    objective = ContrastiveObjective(data, ("image", "vector"))
    batch = torch.utils.data.default_collate([data[i] for i in range(16)])
    loss, logs = objective(model, batch, torch.Generator().manual_seed(3))
    inputs = objective.draw_inputs(batch, torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = model(inputs)
    # the default positives: same label, by hand
    mask = batch["label"][:, None] == batch["label"][None, :]
    assert loss.item() == pytest.approx(info_nce(out["logits_vector"], mask).item(), rel=1e-5)
    assert logs["loss_vector"] == pytest.approx(loss.item())

    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        idx = torch.randperm(64, generator=g)[:16]
        batch = torch.utils.data.default_collate([data[int(i)] for i in idx])
        loss, _ = objective(model, batch, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    test_images, test_labels = bars(20, torch.Generator().manual_seed(9))
    test_vectors, test_vlabels = _vectors(20, torch.Generator().manual_seed(10))
    metrics = retrieval_metrics(
        model.embed("vector", test_vectors) @ model.embed_images(test_images).t(),
        relevance_from_labels(test_vlabels, test_labels),
    )
    assert metrics["R@1"] >= 0.9


def test_the_cli_accepts_a_registered_modality(vector):
    from synesthesia.commands.clip import _modalities

    assert _modalities("image,vector") == ("image", "vector")
