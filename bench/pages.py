"""Local pages for the benchmarks: a threaded HTTP server on 127.0.0.1 serving a few KB of
deterministic HTML per index, whose title the benchmarks check their results against."""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_WORDS = (
    "automation browser context worker pool queue latency throughput chromium render layout "
    "paint script network request response cache cookie session header payload result trace "
    "screenshot snapshot selector locator element attribute document window frame event "
    "listener promise task loop thread process memory socket frame budget"
).split()


def _sentence(rnd: random.Random) -> str:
    words = [rnd.choice(_WORDS) for _ in range(rnd.randint(8, 16))]
    return " ".join(words).capitalize() + "."


def page_title(i: int) -> str:
    rnd = random.Random(i)
    return f"Bench page {i}: {rnd.choice(_WORDS)} {rnd.choice(_WORDS)}"


def page_html(i: int) -> bytes:
    """A few KB of plain HTML: a title, a heading, a nav list, paragraphs and a table."""
    rnd = random.Random(1_000_000 + i)
    paragraphs = "\n".join(f"<p>{' '.join(_sentence(rnd) for _ in range(rnd.randint(3, 6)))}</p>" for _ in range(6))
    nav = "".join(f'<li><a href="/p/{(i + k) % 997}">{rnd.choice(_WORDS)}</a></li>' for k in range(1, 9))
    rows = "".join(
        f"<tr><td>{rnd.choice(_WORDS)}</td><td>{rnd.randint(1, 9999)}</td><td>{rnd.random():.4f}</td></tr>"
        for _ in range(10)
    )
    html = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{page_title(i)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:auto}} td{{padding:2px 8px}}</style>
</head><body>
<header><h1>Article {i}</h1><nav><ul>{nav}</ul></nav></header>
<main>{paragraphs}
<table><thead><tr><th>name</th><th>count</th><th>ratio</th></tr></thead><tbody>{rows}</tbody></table>
</main><footer><p>Generated for the intunedd benchmark.</p></footer>
</body></html>
"""
    return html.encode()


class PageServer:
    """A threaded HTTP server on 127.0.0.1 serving /p/<i> for i < count (pre-rendered)."""

    def __init__(self, count: int) -> None:
        pages = {f"/p/{i}": page_html(i) for i in range(max(count, 997))}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                body = pages.get(self.path.split("?")[0])
                self.send_response(200 if body is not None else 404)
                body = body if body is not None else b"not found"
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the browser went away mid-page: the kill -9 campaign does that on purpose

            def log_message(self, *args: Any) -> None:
                pass

        self.sizes = [len(pages[f"/p/{i}"]) for i in range(count)]
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> PageServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/p/{i}"
