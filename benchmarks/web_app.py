"""The web app under load, and its screenshot for the README.

Starts `painterly serve`'s app on a free loopback port, runs a Gatys job (tubingen + Starry Night) and,
while it paints, times the API calls a page makes (status, list, methods) against the same calls on
an idle server; reports what the previews cost as a share of the run. With --screenshot PATH it also
drives Debian's Chromium through the page (examples, a painted region on each image, start, wait) and
saves a screenshot.

    python benchmarks/web_app.py [--size 256] [--iterations 60] [--screenshot docs/web_app.png]
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
from io import BytesIO
from pathlib import Path

import httpx
import uvicorn
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import painterly  # noqa: E402
from painterly.web.server import ServerSettings, create_app  # noqa: E402

CALLS = ("/api/jobs/{id}", "/api/jobs", "/api/methods")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def start_server(data: Path) -> tuple[str, uvicorn.Server, threading.Thread]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(ServerSettings(data, port=port, token="bench")),
                                           host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return f"http://127.0.0.1:{port}", server, thread


def time_calls(client: httpx.Client, job_id: str, rounds: int, until=None) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {c: [] for c in CALLS}
    for _ in range(rounds):
        for call in CALLS:
            t0 = time.perf_counter()
            client.get(call.format(id=job_id)).raise_for_status()
            times[call].append(time.perf_counter() - t0)
        if until is not None and until():
            break
        time.sleep(0.1)
    return times


def submit(client: httpx.Client, options: dict) -> str:
    examples = painterly.example_images()
    with open(examples["tubingen"], "rb") as c, open(examples["starry_night"], "rb") as s:
        answer = client.post("/api/jobs", files=[("content", ("tubingen.jpg", c)), ("style", ("starry_night.jpg", s))],
                             data={"options": json.dumps(options)})
    answer.raise_for_status()
    return answer.json()["id"]


def screenshot(url: str, path: Path, size: int, iterations: int) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(url + "/")
        page.wait_for_selector("#method option", state="attached")
        page.select_option("#content-example", "tubingen")
        page.wait_for_function("document.querySelectorAll('.panel').length == 1")
        page.select_option("#style-example", "starry_night")
        page.wait_for_function("document.querySelectorAll('.panel').length == 2")
        for index, (x0, y0, x1, y1) in enumerate([(0.05, 0.08, 0.9, 0.25), (0.05, 0.08, 0.9, 0.3)]):
            box = page.locator(".panel canvas").nth(index).bounding_box()
            page.mouse.move(box["x"] + x0 * box["width"], box["y"] + y0 * box["height"])
            page.mouse.down()
            page.mouse.move(box["x"] + x1 * box["width"], box["y"] + y1 * box["height"], steps=12)
            page.mouse.up()
        page.fill("#opt-size", str(size))
        page.fill("#opt-iterations", str(iterations))
        page.click("#start")
        page.wait_for_selector("#download:not([hidden])", state="attached", timeout=600_000)
        page.wait_for_timeout(500)
        painterly.save_image(Image.open(BytesIO(page.screenshot(full_page=True))), path)
        browser.close()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--iterations", type=int, default=60)
    p.add_argument("--screenshot", type=Path)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, server, thread = start_server(Path(tmp))
        with httpx.Client(base_url=url, timeout=30) as client:
            warm = submit(client, {"size": 32, "iterations": 2, "scales": 1})
            while client.get(f"/api/jobs/{warm}").json()["state"] != "done":
                time.sleep(0.1)
            idle = time_calls(client, warm, 30)
            job = submit(client, {"size": args.size, "iterations": args.iterations, "seed": 0})
            while client.get(f"/api/jobs/{job}").json()["state"] != "running":
                time.sleep(0.05)
            busy = time_calls(client, job, 10_000,
                              until=lambda: client.get(f"/api/jobs/{job}").json()["state"] != "running")
            status = client.get(f"/api/jobs/{job}").json()
        print(f"web app on 2 cores: a Gatys job at {args.size} px, {args.iterations} iterations per scale, "
              f"{status['progress']['elapsed']:.1f} s")
        print(f"{'call':<18}{'idle p50 ms':>12}{'busy p50 ms':>12}{'busy p95 ms':>12}{'busy max ms':>12}{'ratio p50':>10}")
        for call in CALLS:
            i, b = sorted(idle[call]), sorted(busy[call])
            p95 = b[min(len(b) - 1, int(0.95 * len(b)))]
            print(f"{call:<18}{1000 * statistics.median(i):>12.1f}{1000 * statistics.median(b):>12.1f}"
                  f"{1000 * p95:>12.1f}{1000 * max(b):>12.1f}{statistics.median(b) / statistics.median(i):>10.2f}")
        share = status["preview_seconds"] / status["progress"]["elapsed"]
        print(f"previews: {status['preview_seconds']:.2f} s of {status['progress']['elapsed']:.1f} s ({100 * share:.1f}%)")
        if args.screenshot:
            screenshot(url, args.screenshot, args.size, args.iterations)
            print(f"wrote {args.screenshot}")
        server.should_exit = True
        thread.join(30)


if __name__ == "__main__":
    main()
