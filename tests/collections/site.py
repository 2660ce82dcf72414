"""The pages the scrape tests fetch, served on 127.0.0.1, and a log of the requests they received."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..conftest import serving

BIG_BYTES = 11 * 1024 * 1024  # over http_scrape's bound
HANG_LIMIT_S = 15  # a hanging page gives up by itself, so the server can always shut down

PAGE = b"""<html><head><title>Shop</title><link rel="stylesheet" href="/style.css"></head><body>
<h1>  Kettles   &amp; more </h1>
<ul id="items"><li class="item"><a href="/p/1">Kettle</a></li><li class="item"><a href="/p/2">Toaster</a></li></ul>
<table><tr><th>Product</th><th>Price</th></tr><tr><td>Kettle</td><td>19.99</td></tr></table>
<img src="/pixel.png" width="10" height="10">
<img src="/tracker/pixel.png" width="1" height="1">
<div id="fetched"></div>
<script>
fetch('/api/data').then(r => r.json()).then(d => { document.getElementById('fetched').textContent = d.word; });
</script>
</body></html>"""

FORM = b"""<html><body>
<input id="q"><select id="size"><option value="s">S</option><option value="l">L</option></select>
<button id="go" onclick="document.getElementById('out').textContent =
  document.getElementById('q').value + '/' + document.getElementById('size').value">Go</button>
<input id="enter" onkeydown="if (event.key === 'Enter') document.getElementById('out').textContent = 'entered'">
<div id="out"></div>
<a id="next" href="/page">next page</a>
</body></html>"""

# "More" appends an item per click and disappears after three clicks.
MORE = b"""<html><body><ul id="list"><li>item 0</li></ul>
<button id="more" onclick="
  const list = document.getElementById('list');
  const li = document.createElement('li'); li.textContent = 'item ' + list.children.length; list.appendChild(li);
  if (list.children.length > 3) this.style.display = 'none';">More</button>
</body></html>"""

CAPTCHA = b"""<html><head><title>Check</title></head><body>
<div class="g-recaptcha" data-sitekey="x"></div></body></html>"""

PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Site:
    """What the served pages received; ``hits(path)`` counts the requests for a path."""

    def __init__(self, url: str, log: list[Seen], release: threading.Event) -> None:
        self.url = url
        self.log = log
        self.release = release

    def hits(self, path: str) -> list[Seen]:
        return [seen for seen in self.log if seen.path == path]


def _handler(log: list[Seen], release: threading.Event) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = urlsplit(self.path).path
            log.append(Seen(self.command, path, {k.lower(): v for k, v in self.headers.items()}, body))
            match path:
                case "/page":
                    self._send(200, PAGE)
                case "/form":
                    self._send(200, FORM)
                case "/more":
                    self._send(200, MORE)
                case "/captcha":
                    self._send(200, CAPTCHA)
                case "/forbidden":
                    self._send(403, b"<html><body>Forbidden</body></html>")
                case "/style.css":
                    self._send(200, b"h1 { color: red }", "text/css")
                case "/pixel.png" | "/tracker/pixel.png":
                    self._send(200, PNG, "image/png")
                case "/fetch-big":
                    script = b"fetch('/api/big').then(r => r.text()).then(() => { document.body.id = 'done'; })"
                    self._send(200, b"<html><body><script>" + script + b"</script></body></html>")
                case "/api/big":
                    self._send(200, "é".encode() * 40_000, "text/plain; charset=utf-8")  # 80 KB, cut mid-character
                case "/api/data":
                    self._send(200, b'{"word": "fetched-word"}', "application/json")
                case "/echo":
                    echoed = {"method": self.command, "headers": dict(self.headers.items()), "body": body.decode()}
                    text = json.dumps(echoed).replace("&", "&amp;").replace("<", "&lt;")
                    self._send(200, f"<html><body><pre id='echo'>{text}</pre></body></html>".encode())
                case "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/page")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                case "/binary":
                    self._send(200, PNG, "image/png")
                case "/big":
                    self._send(200, b"x" * BIG_BYTES)
                case "/big-stream":  # no Content-Length: the body ends when the connection closes
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Connection", "close")
                    self.end_headers()
                    for _ in range(BIG_BYTES // 65536):
                        self.wfile.write(b"x" * 65536)
                    self.close_connection = True
                case "/hang":
                    release.wait(HANG_LIMIT_S)
                    self._send(200, b"<html><body>late</body></html>")
                case _:
                    self._send(404, b"<html><body>Not found</body></html>")

        def _send(self, status: int, body: bytes, content_type: str = "text/html; charset=utf-8") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the scrape gave up on us (a timeout test)

    return Handler


@contextmanager
def serve_site() -> Iterator[Site]:
    log: list[Seen] = []
    release = threading.Event()
    with serving(_handler(log, release)) as url:
        try:
            yield Site(url, log, release)
        finally:
            release.set()
