"""The README's picture of the web app (docs/web_app.jpg): a local server, the bundled examples uploaded in
Debian's Chromium (Playwright's Python client, never `playwright install`), a region painted on each, a
small Gatys job run to the end, and the page captured with its result, loss curve and gallery.

    python benchmarks/web_screenshot.py [--out docs/web_app.jpg] [--size 256] [--iterations 60]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "web_app.jpg"))
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iterations", type=int, default=60)
    args = ap.parse_args()
    import uvicorn
    from PIL import Image
    from playwright.sync_api import sync_playwright

    from painterly.web.server import ServerSettings, create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = Path(tempfile.mkdtemp(prefix="painterly-shot-"))
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(data, port=port, token="t")), host="127.0.0.1",
                                           port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    examples = ROOT / "painterly" / "examples"
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                                        args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            page.goto(f"http://127.0.0.1:{port}/?token=t")
            page.wait_for_selector("#method option", state="attached")
            page.set_input_files("#content-file", str(examples / "tubingen.jpg"))
            page.wait_for_function("document.querySelectorAll('.panel').length == 1")
            page.set_input_files("#style-file", str(examples / "starry_night.jpg"))
            page.wait_for_function("document.querySelectorAll('.panel').length == 2")
            for index, (x0, y0, x1, y1) in enumerate([(0.05, 0.05, 0.95, 0.3), (0.1, 0.08, 0.9, 0.35)]):
                page.click('#palette button[data-color="yellow"]')  # the sky, from the swirling sky
                box = page.locator(".panel canvas").nth(index).bounding_box()
                for row in range(6):
                    y = box["y"] + box["height"] * (y0 + (y1 - y0) * row / 5)
                    page.mouse.move(box["x"] + box["width"] * x0, y)
                    page.mouse.down()
                    page.mouse.move(box["x"] + box["width"] * x1, y, steps=12)
                    page.mouse.up()
            page.select_option("#method", "gatys")
            page.fill("#opt-size", str(args.size))
            page.fill("#opt-iterations", str(args.iterations))
            page.click("#start")
            page.wait_for_function("document.getElementById('job-state').textContent.startsWith('done')",
                                   timeout=600_000)
            page.wait_for_selector("#loss-curve:not([hidden])", state="visible", timeout=30_000)
            time.sleep(1.0)  # the gallery's refresh
            shot = data / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
        image = Image.open(shot).convert("RGB")
        image.thumbnail((1100, 1400))
        image.save(args.out, quality=85)
        print(f"wrote {args.out} ({image.width}x{image.height})")
    finally:
        server.should_exit = True
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
