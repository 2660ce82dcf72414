"""A scripted stand-in for the browser worker: speaks ``protocol.py`` without Chromium, and can be
told to misbehave the ways a worker running hostile user code might.

    python -m intunedd.workers.fake BEHAVIOUR [--pid-file PATH] '<WorkerConfig JSON>'

which is what ``spawn_worker(..., command=fake_command(BEHAVIOUR))`` runs. Behaviours:

    ok ................ Ready, then every Start gets Done(success, result=Start.parameters)
    logged-in ......... as ok, but an AuthSession's check passes and its create gives a state
    silent ............ never says anything
    crash ............. exits with status 3 at once
    not-ready ......... sends Done instead of Ready, then waits
    huge-ready ........ a 0xFFFFFFFF length prefix instead of Ready, then waits
    hang .............. Ready; on Start nothing ever again, Abort included
    huge-length ....... Ready; on Start a 0xFFFFFFFF length prefix, then waits
    garbage ........... Ready; on Start a frame that is not JSON, then waits
    invalid ........... Ready; on Start a Done that fails validation, then waits
    unexpected ........ Ready; on Start a second Ready, then waits
    bad-key ........... Ready; on Start a StoreSet whose key the protocol forbids, then waits
    big-error ......... Ready; on Start a failed Done with a 1 MiB message and stack
    big-result ........ Ready; on Start a Done whose result is parameters["size"] bytes of JSON
    flood-log ......... Ready; on Start writes parameters["lines"] lines of parameters["width"]
                        characters straight into the log file, ignoring its limits, then Done
    scripted .......... as ok, but an attempt whose number is at most parameters["fail_attempts"]
                        fails (retryable), and parameters["extend"] (a list of {api, parameters})
                        is returned as extended payloads

A fake given a browser host (``WorkerConfig.remote_endpoint``) reports its host name as its browser
version, and fails to start, as on a host that is down, while a file of that name exists in the
directory ``$INTUNEDD_FAKE_HOSTS_DOWN`` names.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from . import protocol
from .limits import log_line
from .protocol import Done, Ready, Start, WorkerConfig

HUGE_LENGTH = b"\xff\xff\xff\xff"
HOSTS_DOWN = "INTUNEDD_FAKE_HOSTS_DOWN"
BEHAVIOURS = (
    "ok",
    "logged-in",
    "silent",
    "crash",
    "not-ready",
    "huge-ready",
    "hang",
    "huge-length",
    "garbage",
    "invalid",
    "unexpected",
    "bad-key",
    "big-error",
    "big-result",
    "flood-log",
    "scripted",
)


def fake_command(behaviour: str, *, pid_file: Path | None = None) -> list[str]:
    """The ``command`` for ``spawn_worker`` that runs this fake."""
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown fake worker behaviour {behaviour!r}")
    extra = ["--pid-file", str(pid_file)] if pid_file is not None else []
    return [sys.executable, "-m", "intunedd.workers.fake", behaviour, *extra]


class _Socket:
    def __init__(self, fd: int) -> None:
        self._sock = socket.socket(fileno=fd)
        self._buffer = b""

    def send(self, frame: protocol.FromWorker) -> None:
        self._sock.sendall(protocol.encode(frame))

    def send_raw(self, data: bytes) -> None:
        self._sock.sendall(data)

    def receive(self) -> protocol.ToWorker | None:
        header = self._read(protocol.HEADER.size)
        if header is None:
            return None
        body = self._read(protocol.frame_length(header, protocol.MAX_TO_WORKER_BYTES))
        return None if body is None else protocol.decode_to_worker(body)

    def _read(self, n: int) -> bytes | None:
        while len(self._buffer) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                return None
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data


def _wait_for_eof(channel: _Socket) -> None:
    while channel.receive() is not None:
        pass


def _frame(body: bytes) -> bytes:
    return protocol.HEADER.pack(len(body)) + body


def _scripted(start: Start) -> Done:
    script = start.parameters if isinstance(start.parameters, dict) else {}
    if start.context.attempt_number <= int(script.get("fail_attempts", 0)):
        error = protocol.AttemptError(code="script-execution-exception", message="scripted failure")
        return Done(success=False, error=error)
    extend = [protocol.ExtendedPayload(api=p["api"], parameters=p.get("parameters")) for p in script.get("extend", [])]
    return Done(success=True, result=start.parameters, extended_payloads=extend)


def _answer(behaviour: str, channel: _Socket, start: Start) -> bool:
    """Answer one Start; False when the fake should stop answering (and just wait for EOF)."""
    match behaviour:
        case "hang":
            return False
        case "huge-length":
            channel.send_raw(HUGE_LENGTH)
            return False
        case "garbage":
            channel.send_raw(_frame(b"\x00not json at all"))
            return False
        case "invalid":
            channel.send_raw(_frame(b'{"type": "done", "success": "yes"}'))
            return False
        case "unexpected":
            channel.send(Ready(pid=os.getpid(), browser_version="fake"))
            return False
        case "bad-key":
            channel.send(protocol.StoreSet(request_id=1, key="project:other", value=1))
            return False
        case "big-error":
            text = "x" * (1024 * 1024)
            error = protocol.AttemptError(
                code="script-execution-exception",
                message=text,
                details={"name": "ValueError", "message": text, "stack": text},
            )
            channel.send(Done(success=False, error=error))
        case "big-result":
            channel.send(Done(success=True, result="x" * (int(start.parameters["size"]) - 2)))
        case "flood-log":
            line = log_line("stdout", "y" * int(start.parameters["width"]))
            with Path(start.log_path).open("a") as log:
                for _ in range(int(start.parameters["lines"])):
                    log.write(line)
            channel.send(Done(success=True))
        case "scripted":
            channel.send(_scripted(start))
        case "logged-in" if start.function == "auth-check":
            channel.send(Done(success=True, result=True))
        case "logged-in" if start.function == "auth-create":
            channel.send(Done(success=True, session={"cookies": [], "origins": [], "sessionStorage": None}))
        case _:
            channel.send(Done(success=True, result=start.parameters))
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="intunedd.workers.fake")
    parser.add_argument("behaviour", choices=BEHAVIOURS)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("config")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if args.pid_file is not None:
        args.pid_file.write_text(str(os.getpid()))
    config = msgspec.json.decode(args.config, type=WorkerConfig)
    channel = _Socket(config.fd)
    host = urlsplit(config.remote_endpoint).hostname or ""
    if host and (Path(os.environ.get(HOSTS_DOWN, "/nonexistent")) / host).exists():
        return 3
    match args.behaviour:
        case "crash":
            return 3
        case "silent":
            _wait_for_eof(channel)
            return 0
        case "not-ready":
            channel.send(Done(success=True))
            _wait_for_eof(channel)
            return 0
        case "huge-ready":
            channel.send_raw(HUGE_LENGTH)
            _wait_for_eof(channel)
            return 0
    channel.send(Ready(pid=os.getpid(), browser_version=host or "fake"))
    while isinstance(frame := channel.receive(), Start | protocol.Abort | protocol.StoreReply):
        if isinstance(frame, Start) and not _answer(args.behaviour, channel, frame):
            break
    _wait_for_eof(channel)
    return 0


if __name__ == "__main__":
    sys.exit(main())
