"""Zero-shot classification on hand-built embeddings."""

import pytest
import torch

from synesthesia.multimodal.zeroshot import ZeroShotClassifier, fill_template


class _FakeTextModel:
    """Embeds a prompt as the axis of the class word it contains (a hand-built joint space)."""

    WORDS = {"cat": 0, "dog": 1, "bird": 2, "kitten": 0, "puppy": 1}

    def __init__(self):
        self.seen: list[str] = []

    def embed_texts(self, texts):
        self.seen.extend(texts)
        out = torch.zeros(len(texts), 4)
        for i, t in enumerate(texts):
            word = t.split()[-1]
            out[i, self.WORDS[word]] = 1.0
            out[i, 3] = 0.5 if t.startswith("a photo") else -0.5  # template-specific direction
        return out / out.norm(dim=1, keepdim=True)


def test_from_prompts_ensembles_templates_and_synonyms():
    model = _FakeTextModel()
    clf = ZeroShotClassifier.from_prompts(
        model,
        {"cat": ["cat", "kitten"], "dog": ["dog", "puppy"], "bird": "bird"},
        templates=["a photo of a {}", "the {}"],
    )
    assert clf.class_names == ["cat", "dog", "bird"]
    assert "a photo of a kitten" in model.seen and "the puppy" in model.seen
    # the +-0.5 template directions cancel in the ensemble: each class is exactly its axis
    torch.testing.assert_close(clf.class_embeddings[:, :3], torch.eye(3))
    torch.testing.assert_close(clf.class_embeddings[:, 3], torch.zeros(3))
    queries = torch.tensor([[0.1, 0.9, 0.2, 0.0], [0.0, 0.1, 1.0, 0.3], [1.0, 0.0, 0.0, 0.9]])
    assert clf.predict(queries).tolist() == [1, 2, 0]
    assert clf.accuracy(queries, torch.tensor([1, 2, 1])) == pytest.approx(2 / 3)


def test_from_embeddings_renormalises_the_mean_and_checks_shapes():
    groups = [torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[-1.0, 0.0]])]
    clf = ZeroShotClassifier.from_embeddings(groups, ["a", "b"])
    s = 2**-0.5
    torch.testing.assert_close(clf.class_embeddings, torch.tensor([[s, s], [-1.0, 0.0]]))
    # cosine logits against the unit class vectors
    torch.testing.assert_close(clf.logits(torch.tensor([[0.0, 2.0]])), torch.tensor([[s, 0.0]]))
    with pytest.raises(ValueError, match="N x 2"):
        clf.logits(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="two classes"):
        ZeroShotClassifier.from_prompts(_FakeTextModel(), ["cat"])
    with pytest.raises(ValueError, match="slot"):
        ZeroShotClassifier.from_prompts(_FakeTextModel(), ["cat", "dog"], templates=["a cat"])


def test_fill_template_fixes_the_article():
    assert fill_template("a {}", "eight") == "an eight"
    assert fill_template("an image of a {}", "8") == "an image of an 8"
    assert fill_template("a {}", "one") == "a one"
    assert fill_template("the number {}", "7") == "the number 7"


class _FakeAudioModel:
    """Embeds a waveform by its mean (+ or -) on axis 0 and its sample rate on axis 1."""

    def embed_audio(self, waves, sample_rate):
        out = torch.stack([torch.tensor([float(w.mean()), 0.1]) for w in waves])
        return out / out.norm(dim=1, keepdim=True)


def test_from_audio_averages_spoken_prompts():
    clips = {
        "up": [torch.full((100,), 1.0), torch.full((80,), 2.0)],
        "down": [torch.full((50,), -1.0)],
    }
    clf = ZeroShotClassifier.from_audio(_FakeAudioModel(), clips, sample_rate=8000)
    assert clf.class_names == ["up", "down"]
    assert clf.predict(torch.tensor([[0.5, 0.1], [-3.0, 0.0]])).tolist() == [0, 1]
    with pytest.raises(ValueError, match="no recordings"):
        ZeroShotClassifier.from_audio(_FakeAudioModel(), {"up": [], "down": clips["down"]}, 8000)
