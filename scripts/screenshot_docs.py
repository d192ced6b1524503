"""Build the documentation site, open its pages in headless Chromium, and save a screenshot of the home page.

    python scripts/screenshot_docs.py            # writes docs/examples/docs_home.png; fails if a page does not render

Every page of the built site is loaded in a real browser (Chromium, headless) and must show its
title in the rendered DOM; the home page is saved as a PNG.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "examples" / "docs_home.png"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("chromium is not installed (apt-get install chromium)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):  # the browser closed a connection early
            pass


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def rendered_dom(browser: str, url: str) -> str:
    return subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--dump-dom", url],
                          capture_output=True, text=True, timeout=120, check=True).stdout


def main() -> int:
    site = Path(tempfile.mkdtemp(prefix="arborec-site-"))
    subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(site)],
                   cwd=ROOT, check=True, env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    browser = chromium()
    server, base = serve(site)
    try:
        pages = sorted(p.relative_to(site).parent.as_posix() for p in site.rglob("index.html"))
        for page in pages:
            url = f"{base}/{'' if page == '.' else page + '/'}"
            dom = rendered_dom(browser, url)
            if "md-content" not in dom or "<h1" not in dom:
                print(f"{url}: did not render (no content or title)", file=sys.stderr)
                return 1
        print(f"{len(pages)} pages rendered in Chromium")
        subprocess.run([browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--window-size=1280,1000", f"--screenshot={OUT}", f"{base}/"],
                       capture_output=True, timeout=120, check=True)
        print(f"home page screenshot: {OUT}")
    finally:
        server.shutdown()
        shutil.rmtree(site, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
