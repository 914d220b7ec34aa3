"""A real browser for the tests: Debian's Chromium (/usr/bin/chromium) driven by Playwright's sync
API, and a QR decoder (zxing-cpp) for what it renders. Both installed by scripts/setup.sh (the
`all` stage: Debian's chromium, PyPI playwright, zxing-cpp and pillow at versions.env's pins).

Playwright's own browser download is never used (`playwright install` is not run: its server is
out of reach on CI machines); it launches Debian's binary. A missing piece fails the test with
what is missing and how to install it: it is never a skip."""

import contextlib
import os
from pathlib import Path

from procs import ROOT

CHROMIUM = os.environ.get("L402_CHROMIUM", "/usr/bin/chromium")
# Headless, no sandbox (containers and CI run as root), and nothing the browser would fetch on its
# own (component updates, sync, QUIC probes): the only requests are the page's.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots of the browser tests, kept after the run (target/ is not in git).
OUTPUT = ROOT / "target" / "test-output"

SETUP_HINT = "run `bash scripts/setup.sh all` (or scripts/test.sh, which runs it)"


class MissingTool(AssertionError):
    """A tool the browser tests need is not installed: a failure, with what to install."""


def _sync_playwright():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        raise MissingTool(f"PyPI playwright is missing from the test venv ({exc}); {SETUP_HINT}") from exc
    return sync_playwright


def _check_chromium():
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        raise MissingTool(f"{CHROMIUM} is missing: install Debian's chromium package "
                          f"(apt-get install chromium); {SETUP_HINT}")


@contextlib.contextmanager
def chromium():
    """A launched Chromium (a Playwright Browser) with a fresh profile, closed on leaving."""
    sync_playwright = _sync_playwright()
    _check_chromium()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def new_page(browser=None, **context_options):
    """A Playwright Page (sync API) in a fresh browser context. `browser`: one from chromium()
    to share (a new one is launched and closed otherwise); `context_options`: Browser.new_context's
    (java_script_enabled=False, viewport=…). Rendered at twice the pixel density by default, so
    that a QR code's modules are several pixels wide in a screenshot."""
    context_options.setdefault("device_scale_factor", 2)
    with contextlib.ExitStack() as stack:
        if browser is None:
            browser = stack.enter_context(chromium())
        context = browser.new_context(**context_options)
        stack.callback(context.close)
        yield context.new_page()


@contextlib.contextmanager
def page():
    """A Playwright Page in a browser of its own, launched and closed with it."""
    with new_page() as p:
        yield p


def screenshot_path(name: str) -> Path:
    """target/test-output/<name>.png (the directory created), printed so a run shows where."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    path = OUTPUT / f"{safe}.png"
    print(f"screenshot: {path}")
    return path


def decode_qr(png_path) -> list[str]:
    """The text of every QR code zxing-cpp finds in the image at `png_path`."""
    try:
        import zxingcpp
    except ImportError as exc:
        raise MissingTool(f"PyPI zxing-cpp is missing from the test venv ({exc}); {SETUP_HINT}") from exc
    try:
        from PIL import Image
    except ImportError as exc:
        raise MissingTool(f"PyPI pillow is missing from the test venv ({exc}); {SETUP_HINT}") from exc
    with Image.open(png_path) as image:
        results = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    return [r.text for r in results if r.valid] if results else []
