"""Crawlee's figure for ``bench/throughput.py``: ``bench/crawlee_pages.py`` run in a venv of its own,
made once with uv (``crawlee[playwright]`` and the daemon's Playwright version) and kept in
``~/.cache/intunedd-bench``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from bench.common import CHROMIUM, CHROMIUM_ARGS, CPU, CpuUse, TreeRss

CRAWLEE = "crawlee[playwright]==1.11.0"
SCRIPT = Path(__file__).with_name("crawlee_pages.py")
INSTALL_TIMEOUT_S = 600


@dataclass
class CrawleeResult:
    pages: int
    elapsed_s: float
    wrong_titles: int
    cpu: CpuUse

    @property
    def per_s(self) -> float:
        return self.pages / self.elapsed_s


def crawlee_python() -> Path:
    """The Python of a venv with Crawlee, made if missing."""
    playwright = version("playwright")
    venv = Path.home() / ".cache" / "intunedd-bench" / f"crawlee-1.11.0-playwright-{playwright}"
    python = venv / "bin" / "python"
    if not python.exists():
        uv = Path(sys.executable).with_name("uv")
        subprocess.run([str(uv), "venv", "-q", str(venv), "--python", sys.executable], check=True)
        install = [str(uv), "pip", "install", "-q", "--python", str(python), CRAWLEE, f"playwright=={playwright}"]
        subprocess.run(install, check=True, timeout=INSTALL_TIMEOUT_S)
    return python


def crawlee_baseline(
    urls: list[str], titles: list[str], concurrency: int, *, timeout_s: float, memory: TreeRss | None = None
) -> CrawleeResult:
    """``memory``, if given, follows the crawler's process tree while it runs."""
    python = crawlee_python()
    with tempfile.TemporaryDirectory(prefix="intunedd-bench-crawlee-") as work:
        urls_file, titles_file = Path(work, "urls.json"), Path(work, "titles.json")
        urls_file.write_text(json.dumps(urls))
        titles_file.write_text(json.dumps(titles))
        # -P: not the script's own directory first on sys.path (bench/collections.py would shadow the stdlib's).
        command = [str(python), "-P", str(SCRIPT), str(urls_file), str(titles_file), "--concurrency", str(concurrency)]
        command += ["--executable", CHROMIUM, *(f"--arg={arg}" for arg in CHROMIUM_ARGS)]
        cpu_start = CPU.snapshot()
        # Crawlee keeps its request queue and statistics under its storage directory: a throwaway one.
        with subprocess.Popen(
            command, cwd=work, env={**os.environ, "CRAWLEE_STORAGE_DIR": work},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ) as process:  # fmt: skip
            if memory is not None:
                memory.follow(process.pid)
            try:
                out, err = process.communicate(timeout=timeout_s)
            finally:
                process.kill()
                if memory is not None:
                    memory.finish()
        cpu = CPU.since(cpu_start)
    if process.returncode != 0:
        raise RuntimeError(f"crawlee exited {process.returncode}: {err[-2000:]}")
    figures = json.loads(out.strip().splitlines()[-1])
    return CrawleeResult(figures["pages"], figures["elapsed_s"], figures["wrong_titles"], cpu)
