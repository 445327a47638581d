"""Copy the README's screenshots from the browser suite's output into docs/screenshots/.

Run after the browser tests (`./scripts/test tests/browser` or `./scripts/test`):

    .venv/bin/python docs/screenshots.py

Long pages are cut at a height that keeps what the README means to show and the file small. Cropping
is done by the same headless Chromium the tests use, so nothing beyond the test dependencies is needed.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "artifacts" / "screenshots"
TARGET = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
LIMIT_BYTES = 300_000

# README name ← browser-suite screenshot, and the height (px) to keep from the top (None: all of it).
SHOTS: dict[str, tuple[str, int | None]] = {
    "overview.png": ("overview-charts.png", None),
    "customers-tag-filter.png": ("customers-filtered-by-tags.png", None),
    "customer-timeline.png": ("channel-code-customer-welcomed.png", None),
    "channel-code.png": ("channel-code-created.png", None),
    "broadcast-preview.png": ("broadcast-preview.png", None),
    "broadcast-report.png": ("broadcast-report.png", None),
    "group-code-rotation.png": ("group-code-rotated.png", None),
    "succession-report.png": ("succession_handover.png", 1150),
    "sensitive-words.png": ("compliance-try-a-text.png", None),
}


def main() -> int:
    from playwright.sync_api import sync_playwright

    missing = [src for src, _ in SHOTS.values() if not (SOURCE / src).exists()]
    if missing:
        print(f"Not in {SOURCE}: {', '.join(missing)}. Run the browser tests first.", file=sys.stderr)
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        for name, (src, keep) in SHOTS.items():
            data = base64.b64encode((SOURCE / src).read_bytes()).decode()
            page.set_content(f'<body style="margin:0"><img id="s" src="data:image/png;base64,{data}"></body>')
            img = page.locator("#s")
            img.evaluate("i => i.decode()")
            width, height = img.evaluate("i => [i.naturalWidth, i.naturalHeight]")
            height = min(height, keep or height)
            out = TARGET / name
            page.screenshot(
                path=str(out), clip={"x": 0, "y": 0, "width": width, "height": height}, full_page=True
            )
            size = out.stat().st_size
            note = "  (over 300 KB: lower its height in SHOTS)" if size > LIMIT_BYTES else ""
            print(f"{name:28} {width}×{height}  {size // 1000} KB{note}")
        browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
