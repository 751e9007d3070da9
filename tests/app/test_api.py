"""Every tab's API route, called through gradio_client against the app served in-process."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio_client", reason="the API tests need gradio_client")


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served.local_url, verbose=False, analytics_enabled=False)


def _digest(path: str) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        return img.size


def _frames(path: str) -> int:
    from PIL import Image

    with Image.open(path) as img:
        return getattr(img, "n_frames", 1)


def test_every_route_is_named(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    want = {
        "/class_to_image",
        "/text_to_image",
        "/text_to_video",
        "/text_to_audio",
        "/joint_search",
        "/samplers",
        "/ventriloquist",
        "/flash",
        "/mcgurk",
        "/fit_trials",
        "/probe",
        "/train_small_image",
    }
    assert want <= names


def test_class_to_image_trains_a_small_one_then_draws_the_same_images_for_the_same_seed(
    client, served
):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no class-to-image checkpoint"):
        client.predict(None, "3", 2.0, 2, "ddim", 0, 2, api_name="/class_to_image")
    *values, status = client.predict(api_name="/train_small_image")  # the button: no value
    dropdown = values[0]["value"]  # an update of the dropdown: the new checkpoint chosen
    assert "Trained a small class-to-image model" in status
    assert dropdown.endswith("checkpoint")
    first = client.predict(dropdown, "3", 2.0, 2, "ddim", 5, 2, api_name="/class_to_image")
    again = client.predict(dropdown, "3", 2.0, 2, "ddim", 5, 2, api_name="/class_to_image")
    other = client.predict(dropdown, "3", 2.0, 2, "ddim", 6, 2, api_name="/class_to_image")
    assert len(first) == 2
    assert [_size(item["image"]) for item in first] == [(112, 112)] * 2  # 28 x 28, 4x
    assert [_digest(i["image"]) for i in first] == [_digest(i["image"]) for i in again]
    assert _digest(first[0]["image"]) != _digest(other[0]["image"])


def test_text_to_image_gives_the_asked_number_of_images(client):
    out = client.predict(
        None, "a thick seven", "thin", 3.0, 2, "euler", 0, 3, api_name="/text_to_image"
    )
    assert len(out) == 3 and _size(out[0]["image"]) == (112, 112)


def test_text_to_video_is_an_animated_gif_of_the_model_frames(client):
    path = client.predict(
        None, "a 3 moving left", "", 3.0, 2, "ddim", 0, 1, api_name="/text_to_video"
    )
    assert path.endswith(".gif")
    assert _frames(path) > 1  # a GIF that plays (identical frames may be merged by Pillow)


def test_text_to_audio_is_a_wav_clip_of_the_model_length_and_a_spectrogram(client, runs):
    import soundfile as sf

    from synesthesia.pipelines.text2audio import TextToAudioPipeline

    audio, spectrogram = client.predict(
        None, "seven", "", 2.0, 2, "ddim", 0, 2, api_name="/text_to_audio"
    )
    pipe = TextToAudioPipeline.from_pretrained(runs / "app-text2audio" / "checkpoint")
    data, rate = sf.read(audio)
    assert rate == pipe.sample_rate
    gap = int(0.25 * rate)
    assert len(data) == 2 * pipe.samples + gap  # two clips and the silence between them
    assert np.all(data[pipe.samples : pipe.samples + gap] == 0)
    assert _size(spectrogram)[0] > 200


def test_joint_search_by_caption_and_by_an_uploaded_spoken_digit(client, tmp_path):
    import soundfile as sf
    from gradio_client import handle_file

    nearest, scores, space = client.predict(
        None, "caption", "a thick seven", None, 5, api_name="/joint_search"
    )
    assert len(nearest) == 5
    confidences = {c["label"]: c["confidence"] for c in scores["confidences"]}
    assert sorted(confidences) == [str(d) for d in range(10)]
    assert sum(confidences.values()) == pytest.approx(1.0, abs=1e-4)
    assert Path(space).is_file()
    t = np.arange(4000) / 8000
    wav = tmp_path / "tone.wav"
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 440 * t), 8000, subtype="PCM_16")
    nearest, scores, _ = client.predict(
        None, "spoken digit", "", handle_file(str(wav)), 3, api_name="/joint_search"
    )
    assert len(nearest) == 3 and len(scores["confidences"]) == 10


def test_the_live_plot_routes_answer_and_depend_on_their_sliders(client):
    a, _ = client.predict("ddim", 10, 2.0, "0", 6, 300, 0, api_name="/samplers")
    b, _ = client.predict("ddim", 10, 0.0, "0", 6, 300, 0, api_name="/samplers")
    assert _digest(a) != _digest(b)
    v1, note = client.predict(2.14, 9.2, 12.3, 0.28, "averaging", api_name="/ventriloquist")
    v0, note0 = client.predict(2.14, 9.2, 12.3, 0.0, "averaging", api_name="/ventriloquist")
    assert _digest(v1) != _digest(v0)
    biases = [float(p.split(": ")[1]) for p in note0.rstrip(".").split("disparity ")[1].split(", ")]
    assert biases == [0.0] * 4  # no common cause: no pull toward vision (-0.00 included)
    f, note = client.predict(0.6, 0.35, 1.5, 1.5, 0.7, "averaging", api_name="/flash")
    assert Path(f).is_file() and "Fission" in note
    m, note = client.predict(0.8, 0.3, 2.0, 0.25, 0.25, "averaging", api_name="/mcgurk")
    assert Path(m).is_file()


def test_fit_route_fits_a_table_and_names_the_bad_column(client, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    from synesthesia.app.brain import example_trials

    good = example_trials(tmp_path)
    table, summary, check = client.predict(
        handle_file(str(good)), "averaging", 1, 0, api_name="/fit_trials"
    )
    rows = {row[0]: row for row in table["data"]}
    assert {"sigma_v", "sigma_a", "sigma_p", "p_common"} <= set(rows)
    assert "250 trials" in summary and Path(check).is_file()
    bad = tmp_path / "bad.csv"
    bad.write_text("stim_v,stim_a,resp_v\n1,2,3\nx,2,3\n")
    with pytest.raises(AppError, match="row 2, column 'stim_v': 'x' is not a number"):
        client.predict(handle_file(str(bad)), "averaging", 1, 0, api_name="/fit_trials")


def test_probe_route_trains_and_fits_a_network(client):
    image, text = client.predict("flash", 10, 5, 0.5, 0, api_name="/probe")
    assert Path(image).is_file() and "averaging" in text
