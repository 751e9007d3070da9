"""The app in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright,
every tab used with tiny settings, and what appears checked.

With ``SYNESTHESIA_SCREENSHOT_DIR`` set, the first tab's full page (on the 2-step models of
these tests) is saved there as app_tiny.png; with ``SYNESTHESIA_SCREENSHOT_RUNS`` set too (a
folder of trained runs with a text2image checkpoint), the text-to-image tab on that model is
saved as app.png. docs/img/app.png is made this way; see docs/app.md.
"""

from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip(
        "no Chromium here: the browser tests drive Debian's chromium (apt-get install "
        "chromium; .ci/run installs it)",
        allow_module_level=True,
    )
pytest.importorskip("playwright.sync_api", reason="the browser tests need playwright")

TIMEOUT_MS = 120_000  # one generation at 1 thread on a shared machine, with margin


@pytest.fixture(scope="module")
def page(served):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(served.local_url)
        page.get_by_role("tab", name="Class to image").wait_for()
        yield page
        browser.close()


def _tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def _set(page, label: str, value) -> None:
    """Type ``value`` into the number box of the visible slider or number field ``label``."""
    box = page.locator(f'input[aria-label="number input for {label}"]:visible')
    if box.count() == 0:
        box = page.get_by_label(label, exact=True).locator("visible=true")
    box.first.fill(str(value))
    box.first.press("Tab")


def _click(page, name: str, exact: bool = True) -> None:
    page.get_by_role("button", name=name, exact=exact).locator("visible=true").first.click()


def _image_sizes(page, selector: str, count: int) -> list[tuple[int, int]]:
    """Wait for ``count`` loaded images under ``selector``; their natural sizes."""
    page.wait_for_function(
        """([sel, n]) => {
            const imgs = [...document.querySelectorAll(sel + ' img')]
                .filter(i => i.complete && i.naturalWidth > 0 && i.offsetParent !== null);
            return imgs.length >= n;
        }""",
        arg=[selector, count],
        timeout=TIMEOUT_MS,
    )
    return page.eval_on_selector_all(
        selector + " img",
        "imgs => imgs.filter(i => i.offsetParent !== null)"
        ".map(i => [i.naturalWidth, i.naturalHeight])",
    )


def _src(page, selector: str) -> str:
    page.wait_for_function(
        "sel => { const i = document.querySelector(sel + ' img'); return i && i.src; }",
        arg=selector,
    )
    return page.eval_on_selector(selector + " img", "i => i.src")


def _changed_src(page, selector: str, before: str) -> str:
    page.wait_for_function(
        "([sel, old]) => { const i = document.querySelector(sel + ' img');"
        " return i && i.src && i.src !== old && i.complete; }",
        arg=[selector, before],
    )
    return _src(page, selector)


def test_class_to_image_trains_a_small_one_then_shows_digits_of_the_right_size(page):
    _tab(page, "Class to image")
    page.locator("#image-gallery").wait_for()
    _click(page, "train a small one", exact=False)
    page.get_by_text("Trained a small class-to-image model").wait_for()
    _set(page, "sampler steps", 2)
    _set(page, "number of images", 3)
    _click(page, "generate")
    sizes = _image_sizes(page, "#image-gallery", 3)
    assert sizes[:3] == [[112, 112]] * 3  # 28 x 28 digits enlarged 4 times
    folder = os.environ.get("SYNESTHESIA_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / "app_tiny.png"), full_page=True)


def test_screenshot_of_a_trained_text_to_image_model(tmp_path_factory):
    """The README's picture: the app on trained runs, 8 digits for "a thick seven"."""
    folder, runs = (
        os.environ.get("SYNESTHESIA_SCREENSHOT_DIR"),
        os.environ.get("SYNESTHESIA_SCREENSHOT_RUNS"),
    )
    if not (folder and runs):
        pytest.skip("set SYNESTHESIA_SCREENSHOT_DIR and SYNESTHESIA_SCREENSHOT_RUNS to take it")
    import socket

    from playwright.sync_api import sync_playwright

    from synesthesia.app.main import launch

    with socket.socket() as sock:  # a free localhost port
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    demo = launch(runs, port=port, block=False)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(demo.local_url)
            _tab(page, "Text to image")
            _set(page, "sampler steps", 20)
            _set(page, "number of images", 8)
            _click(page, "generate")
            assert _image_sizes(page, "#t2i-gallery", 8)[:8] == [[112, 112]] * 8
            Path(folder).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(folder) / "app.png"), full_page=True)
            browser.close()
    finally:
        demo.close()


def test_text_to_image_shows_a_gallery(page):
    _tab(page, "Text to image")
    _set(page, "sampler steps", 2)
    _set(page, "number of images", 2)
    _click(page, "generate")
    assert _image_sizes(page, "#t2i-gallery", 2)[:2] == [[112, 112]] * 2


def test_video_is_a_gif_that_plays(page):
    from PIL import Image

    _tab(page, "Video")
    _set(page, "sampler steps", 2)
    _click(page, "generate")
    src = _src(page, "#video-gif")
    assert ".gif" in src
    data = page.request.get(src).body()
    with Image.open(io.BytesIO(data)) as gif:
        assert gif.format == "GIF" and gif.n_frames > 1


def test_audio_player_loads_a_wav_and_shows_its_spectrogram(page):
    _tab(page, "Audio")
    _set(page, "sampler steps", 2)
    _click(page, "generate")
    # the player (wavesurfer) loads the clip from the same file its download link names
    link = page.locator("#audio-player a[download]")
    link.wait_for()
    src = link.get_attribute("href")
    assert src.endswith(".wav")
    page.wait_for_function(  # the player decoded it: its duration is shown
        "() => { const t = document.querySelector('#audio-player #duration');"
        " return t && t.textContent.trim() !== '0:00'; }"
    )
    assert page.request.get(src).body()[:4] == b"RIFF"  # a WAV file
    assert _src(page, "#audio-mel")


def test_joint_embedding_shows_nearest_images_scores_and_the_map(page):
    _tab(page, "Joint embedding")
    _click(page, "search")
    assert len(_image_sizes(page, "#joint-map", 1)) == 1
    page.get_by_text("zero-shot scores").first.wait_for()


def test_samplers_plot_changes_when_a_slider_moves(page):
    _tab(page, "Samplers")
    before = _src(page, "#samplers-plot")
    _set(page, "steps", 3)
    after = _changed_src(page, "#samplers-plot", before)
    assert after != before


def test_brain_plot_changes_live_and_a_bad_csv_shows_its_error(page, tmp_path):
    _tab(page, "Brain")
    _tab(page, "Ventriloquist")
    before = _src(page, "#brain-ventriloquist-plot")
    _set(page, "p_common", 0.9)
    assert _changed_src(page, "#brain-ventriloquist-plot", before) != before
    _tab(page, "Fit a trial table")
    bad = tmp_path / "bad.csv"
    bad.write_text("stim_v,stim_a,resp_v\n1,2,3\nx,2,3\n")
    page.locator("#brain-csv input[type=file]").set_input_files(str(bad))
    _click(page, "fit")
    page.get_by_text("is not a number").first.wait_for()  # the message, in the page


def test_network_probe_trains_and_plots(page):
    _tab(page, "Network probes")
    _set(page, "training steps", 10)
    _set(page, "trials per condition", 5)
    page.get_by_label("flash", exact=True).check()
    _click(page, "train and probe")
    assert len(_image_sizes(page, "#probes-plot", 1)) == 1
