"""Which Chromium the browser workers launch, and the ffmpeg Playwright records video with.

Daemon side, so only file checks: importing Playwright's API here would drag asyncio machinery into
the trio daemon. Playwright keeps its downloaded browsers in a registry directory
(``$PLAYWRIGHT_BROWSERS_PATH`` or ``~/.cache/ms-playwright``) as ``<name>-<revision>/``, with the
revisions listed in the ``browsers.json`` shipped inside the playwright package.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from ..config import PoolSettings
from .protocol import WorkerConfig

# Debian's packages, relative to the filesystem root so tests can use a fake one.
DEBIAN_HEADLESS_SHELL = "usr/lib/chromium/chromium-headless-shell"
DEBIAN_CHROMIUM = "usr/bin/chromium"

# Inside a Playwright registry directory, below ``<name>-<revision>/``.
_HEADLESS_SHELL_GLOB = "chrome-*/chrome-headless-shell"
_CHROMIUM_GLOB = "chrome-linux*/chrome"


class BrowserNotFoundError(RuntimeError):
    pass


def find_browser(
    setting: str, headless: bool, *, environ: Mapping[str, str] = os.environ, root: Path = Path("/")
) -> str | None:
    """The executable to launch, or None to let Playwright launch its own downloaded browser.

    ``setting`` is the configured path or ``"auto"``.
    """
    if setting != "auto":
        if not Path(setting).exists():
            raise ValueError(f"browser executable {setting!r} does not exist")
        return setting
    if _own_chromium(registry_dir(environ), headless) is not None:
        return None
    candidates = [DEBIAN_HEADLESS_SHELL, DEBIAN_CHROMIUM] if headless else [DEBIAN_CHROMIUM]
    for candidate in candidates:
        if (root / candidate).exists():
            return str(root / candidate)
    raise BrowserNotFoundError(
        "no Chromium found: install Debian's with `apt-get install chromium chromium-headless-shell`, "
        "or Playwright's with `playwright install chromium`, or set the browser path explicitly"
    )


def prepare_ffmpeg(state_dir: Path, *, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """Environment for the workers that lets Playwright record video with the system ffmpeg.

    Playwright only looks for ffmpeg at ``<registry>/ffmpeg-<revision>/ffmpeg-linux``, so we build a
    registry under ``state_dir`` holding just a symlink there. Returns {} when there is no ffmpeg,
    when Playwright's own ffmpeg is installed, or when Playwright's own browsers are in use
    (pointing the registry elsewhere would hide them).
    """
    ffmpeg = shutil.which("ffmpeg", path=environ.get("PATH"))
    playwright_registry = registry_dir(environ)
    relative_link = Path(f"ffmpeg-{playwright_revision('ffmpeg')}", "ffmpeg-linux")
    if (
        ffmpeg is None
        or (playwright_registry / relative_link).exists()
        or any(_own_chromium(playwright_registry, headless) for headless in (True, False))
    ):
        return {}
    registry = state_dir / "playwright-browsers"
    link = registry / relative_link
    link.parent.mkdir(parents=True, exist_ok=True)
    link.unlink(missing_ok=True)  # ffmpeg may have moved since the last start
    link.symlink_to(ffmpeg)
    return {"PLAYWRIGHT_BROWSERS_PATH": str(registry)}


def registry_dir(environ: Mapping[str, str]) -> Path:
    """Where Playwright looks for its downloaded browsers (Linux rules)."""
    configured = environ.get("PLAYWRIGHT_BROWSERS_PATH")
    if configured == "0":
        return _playwright_package() / "driver" / "package" / ".local-browsers"
    if configured:
        return Path(configured)
    cache = environ.get("XDG_CACHE_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".cache")
    return Path(cache) / "ms-playwright"


def playwright_revision(name: str) -> str:
    """The revision of ``name`` (``chromium``, ``ffmpeg``, …) the installed Playwright expects."""
    manifest = json.loads((_playwright_package() / "driver" / "package" / "browsers.json").read_text())
    for browser in manifest["browsers"]:
        if browser["name"] == name:
            return str(browser["revision"])
    raise LookupError(f"Playwright's browsers.json lists no {name!r}")


def _own_chromium(registry: Path, headless: bool) -> Path | None:
    # Only the exact revision counts: Playwright refuses to launch any other.
    name, pattern = ("chromium-headless-shell", _HEADLESS_SHELL_GLOB) if headless else ("chromium", _CHROMIUM_GLOB)
    browser_dir = registry / f"{name.replace('-', '_')}-{playwright_revision(name)}"
    return next(browser_dir.glob(pattern), None)


def _playwright_package() -> Path:
    spec = importlib.util.find_spec("playwright")
    if spec is None or spec.origin is None:
        raise BrowserNotFoundError("the playwright package is not installed")
    return Path(spec.origin).parent


def worker_config(pool: PoolSettings) -> WorkerConfig:
    """What every worker is started with: its browser, found once here (the pool gives each worker
    on a browser host that host's endpoint)."""
    browser = None if pool.hosts else find_browser(pool.browser, pool.headless)
    return WorkerConfig(
        fd=-1,
        browser_executable=browser,
        headless=pool.headless,
        browser_args=pool.browser_args,
    )
