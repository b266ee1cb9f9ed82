"""End to end in a real headless Chromium (Debian's /usr/bin/chromium driven by Playwright's Python
client): upload two images, paint a region on each, start a 64 px job, wait for it, download the
result, save a screenshot."""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
playwright = pytest.importorskip("playwright.sync_api")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed", allow_module_level=True)

from painterly.web.server import ServerSettings, create_app  # noqa: E402

# As this machine needs them: no sandbox as root, and no background connections to a closed network.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    port = free_port()
    settings = ServerSettings(tmp_path / "data", port=port, token="t")
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", settings
    instance.should_exit = True
    thread.join(30)


def photo(path: Path, colors) -> Path:
    image = Image.new("RGB", (96, 72), colors[0])
    for x in range(0, 96, 12):
        for y in range(72):
            image.putpixel((x, y), colors[1])
    image.save(path)
    return path


def paint(page, index: int, color: str) -> None:
    page.click(f'#palette button[data-color="{color}"]')
    box = page.locator(".panel canvas").nth(index).bounding_box()
    page.mouse.move(box["x"] + 10, box["y"] + 10)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5, steps=10)
    page.mouse.up()


@contextlib.contextmanager
def opened_page(url: str, width: int = 1280, height: int = 900, **options):
    """The page in headless Chromium, its methods listed; yields (page, the page's script errors)."""
    errors: list[str] = []
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": width, "height": height}, **options)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url + "/")
        page.wait_for_selector("#method option", state="attached")
        yield page, errors
        browser.close()


def test_upload_paint_run_and_download_in_chromium(server, tmp_path):
    url, settings = server
    content = photo(tmp_path / "harbour.png", [(40, 90, 160), (230, 230, 220)])
    style = photo(tmp_path / "painting.png", [(200, 60, 30), (250, 200, 40)])
    with opened_page(url, accept_downloads=True) as (page, errors):
        page.set_input_files("#content-file", str(content))
        page.wait_for_function("document.querySelectorAll('.panel').length == 1")
        page.set_input_files("#style-file", str(style))
        page.wait_for_function("document.querySelectorAll('.panel').length == 2")
        paint(page, 0, "green")
        paint(page, 1, "green")
        assert "green: content: yes, style 1: yes (paired)" in page.inner_text("#pairs")
        page.select_option("#method", "gatys")
        page.fill("#opt-size", "64")
        page.fill("#opt-iterations", "8")
        page.click("#start")
        page.wait_for_selector("#download:not([hidden])", state="attached", timeout=120_000)
        assert page.inner_text("#job-state").startswith("done")
        page.wait_for_selector("#loss-curve:not([hidden])", state="visible", timeout=10_000)  # the run's curve
        with page.expect_download() as download:
            page.click("#download")
        saved = tmp_path / "result.png"
        download.value.save_as(saved)
        page.screenshot(path=str(tmp_path / "app.png"), full_page=True)
        page.click("#copy-command")
        page.wait_for_selector("#command:not([hidden])", state="attached")
        command = page.inner_text("#command")
    assert not errors, errors
    result = Image.open(saved)
    assert result.size == (64, 48)
    job = json.loads(next((settings.data / "jobs").glob("*/job.json")).read_text())
    assert job["inputs"] == {"content": "harbour.png", "styles": ["painting.png"], "content_guidance": True,
                             "style_guidance": 1}
    # the painted map the page sent is the CLI's colour code: green where painted, black elsewhere
    guide = Image.open(next((settings.data / "jobs").glob("*/content_guidance_0.upload"))).convert("RGB")
    colors = {c for _, c in guide.getcolors(1 << 20) if _ > 50}
    assert (0, 255, 0) in colors and (0, 0, 0) in colors
    assert "--content-guidance content_guidance.png" in command and "--size 64" in command
    assert (tmp_path / "app.png").stat().st_size > 10_000
    # the picture moved toward the red-and-yellow style from the blue-and-white photo
    import numpy as np

    def warmth(image):
        rgb = np.asarray(image.convert("RGB"), float)
        return rgb[..., 0].mean() - rgb[..., 2].mean()

    assert warmth(result) > warmth(Image.open(content)) + 20


def test_a_phone_a_keyboard_a_reload_and_the_order_styles_were_picked_in(server, tmp_path):
    """On a phone the two columns overlapped (the pictures 64 px wide, the page scrolling sideways); the file
    pickers were out of the tab order; styles picked together came in the order they loaded; a reload lost
    the job under way; a network's model defaulted to "none", which cannot run; no time estimate was shown;
    a finished job could not be removed."""
    url, _ = server
    big = tmp_path / "first.png"
    Image.effect_noise((1600, 1200), 60).convert("RGB").save(big)  # loads slower than the second
    small = photo(tmp_path / "second.png", [(200, 60, 30), (250, 200, 40)])
    content = photo(tmp_path / "harbour.png", [(40, 90, 160), (230, 230, 220)])
    with opened_page(url, 375, 800) as (page, errors):
        page.set_input_files("#content-file", str(content))
        page.set_input_files("#style-file", [str(big), str(small)])
        page.wait_for_function("document.querySelectorAll('.panel canvas').length == 3 && "
                               "[...document.querySelectorAll('.panel')].every(p => p.innerText.includes(':'))")
        labels = page.locator(".panel .caption span").all_inner_texts()
        assert labels == ["content: harbour.png", "style 1: first.png", "style 2: second.png"], labels
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        settings, inputs = page.locator("#settings").bounding_box(), page.locator("#inputs").bounding_box()
        assert settings["y"] >= inputs["y"] + inputs["height"] - 1 and settings["width"] > 300  # one column
        page.focus("body")
        reached = []
        for _ in range(6):
            page.keyboard.press("Tab")
            reached.append(page.evaluate("document.activeElement.id"))
        assert "content-file" in reached and "style-file" in reached, reached
        page.select_option("#method", "network")
        assert page.input_value("#opt-model") in ("four_paintings", "starry_night")
        page.select_option("#method", "gatys")
        page.fill("#opt-size", "64")
        page.fill("#opt-iterations", "3000")
        page.click("#start")
        page.wait_for_selector("#run:not([hidden])", state="attached")
        page.wait_for_function("document.getElementById('job-state').textContent.includes('(estimated)')")
        job = page.inner_text("#job-id")
        page.reload()
        page.wait_for_function(f"document.getElementById('job-id').textContent == '{job}'")
        assert not page.locator("#run").is_hidden()
        card = page.locator(f'.card[data-job="{job}"]')
        assert card.get_attribute("tabindex") == "0" and card.get_attribute("role") == "button"
        page.click("#cancel")
        page.wait_for_function("document.getElementById('job-state').textContent.startsWith('cancelled')")
        # and a job that ended can leave the gallery, after the page asks
        asked = []
        page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
        page.click("#remove")
        page.wait_for_function("document.getElementById('gallery').innerText.includes('No jobs yet')")
        assert asked and "Remove" in asked[0] and page.locator("#run").is_hidden()
    assert not errors, errors


def test_region_maps_made_elsewhere_load_onto_the_pictures_and_go_with_the_job(server, tmp_path):
    """Guidance maps could only be painted on the page, not given as the CLI takes them (STROTSS's example
    maps): each picture loads one, its colours become that picture's regions, and the job carries them."""
    url, settings = server
    content = photo(tmp_path / "harbour.png", [(40, 90, 160), (230, 230, 220)])
    style = photo(tmp_path / "painting.png", [(200, 60, 30), (250, 200, 40)])
    region = (41, 99, 165)  # a colour of no palette, as a map made elsewhere has
    for name in ("content_map.png", "style_map.png"):
        m = Image.new("RGB", (96, 72), (0, 0, 0))
        m.paste(region, (0, 0, 48, 72))
        m.save(tmp_path / name)
    with opened_page(url) as (page, errors):
        page.set_input_files("#content-file", str(content))
        page.wait_for_function("document.querySelectorAll('.panel').length == 1")
        page.set_input_files("#style-file", str(style))
        page.wait_for_function("document.querySelectorAll('.panel').length == 2")
        maps = page.locator(".panel .caption input[type=file]")
        maps.nth(0).set_input_files(str(tmp_path / "content_map.png"))
        maps.nth(1).set_input_files(str(tmp_path / "style_map.png"))
        page.wait_for_function("document.getElementById('pairs').innerText.includes('style 1: yes (paired)')")
        page.select_option("#method", "gatys")
        page.fill("#opt-size", "64")
        page.fill("#opt-iterations", "3")
        page.click("#start")
        page.wait_for_function("document.getElementById('job-state').textContent.startsWith('done')",
                               timeout=120_000)
    assert not errors, errors
    job = json.loads(next((settings.data / "jobs").glob("*/job.json")).read_text())
    assert job["inputs"]["content_guidance"] is True and job["inputs"]["style_guidance"] == 1
    guide = Image.open(next((settings.data / "jobs").glob("*/content_guidance_0.upload"))).convert("RGB")
    colors = {c for n, c in guide.getcolors(1 << 20) if n > 50}
    assert region in colors and (0, 0, 0) in colors
