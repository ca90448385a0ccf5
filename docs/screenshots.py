"""Make the README's two screenshots (docs/audit-log.png, docs/dashboard.png) from the seeded demo.

    .venv/bin/python docs/screenshots.py

A scratch SQLite database in a temporary directory is migrated and filled by ``seed_demo``; the
development server serves it on a free loopback port; Chromium (/usr/bin/chromium, through
Playwright) logs in as the demo port engineer PE001 and photographs both pages 1366 px wide.
Nothing outside the temporary directory and the two PNG files is touched.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1366, 900
PAGES = (("/admin/audit-log", "audit-log.png"), ("/dashboard/", "dashboard.png"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict, *args: str) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL)


def wait_for(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=2).close()  # noqa: S310 - our own loopback server
            return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the server at {url} did not answer within {seconds:.0f} s")


def main() -> None:
    from playwright.sync_api import sync_playwright

    sys.path.insert(0, str(ROOT))
    from core.management.commands.seed_demo import DEMO_PASSWORD

    with tempfile.TemporaryDirectory(prefix="marine-shots-") as tmp:
        env = {
            **os.environ,
            "DEBUG": "1",  # the development server serves the static files
            "SECRET_KEY": "screenshots-only-" + "x" * 40,
            "DATABASE_URL": f"sqlite:///{tmp}/demo.sqlite3",
            "AUDIT_SEAL_FILE": f"{tmp}/seal.json",
            "TASKS_BACKEND": "database",
        }
        env.pop("DJANGO_SETTINGS_MODULE", None)
        manage(env, "migrate", "--noinput")
        manage(env, "seed_demo")
        port = free_port()
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                                  cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(f"{base}/login/")
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                     args=["--no-sandbox", "--disable-gpu"])
                page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
                page.goto(f"{base}/login/")
                page.fill("input[name=username]", "PE001")
                page.fill("input[name=password]", DEMO_PASSWORD)
                page.click("button[type=submit]")
                page.wait_for_load_state("networkidle")
                for path, name in PAGES:
                    page.goto(f"{base}{path}")
                    page.wait_for_timeout(1500)  # the dashboard's first refresh
                    page.screenshot(path=str(DOCS / name), full_page=False)
                    print(f"wrote docs/{name}")
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
