"""The package index environments install from: ``environments.index_url`` and friends when set,
else what the host's pip configuration names (uv reads its own ``UV_*`` variables itself but not
pip's files, and hosts are usually configured for pip).

pip's configuration files are INI files read in pip's documented order (global, user, site, then
``PIP_CONFIG_FILE``), later ones winning, with ``PIP_*`` variables over all of them.
"""

from __future__ import annotations

import configparser
import os
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec

from ..config import EnvironmentSettings


class IndexConfig(msgspec.Struct, frozen=True):
    index_url: str = ""
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def uv_args(self) -> list[str]:
        args = ["--index-url", self.index_url] if self.index_url else []
        for url in self.extra_index_urls:
            args += ["--extra-index-url", url]
        for link in self.find_links:
            args += ["--find-links", link]
        if self.extra_index_urls:
            # pip takes the best version across all its indexes; uv by default only the first
            # index's, which would make the same configuration resolve differently.
            args += ["--index-strategy", "unsafe-best-match"]
        return args


def _pip_files(environ: Mapping[str, str]) -> list[Path]:
    xdg_dirs = environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(":")
    xdg_home = environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    files = [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs)] + [Path("/etc/pip.conf")]
    files += [Path(os.path.expanduser("~/.pip/pip.conf")), Path(xdg_home) / "pip" / "pip.conf"]
    files.append(Path(sys.prefix) / "pip.conf")
    if environ.get("PIP_CONFIG_FILE"):
        files.append(Path(environ["PIP_CONFIG_FILE"]))
    return files


def from_pip(environ: Mapping[str, str] = os.environ) -> IndexConfig:
    values: dict[str, str] = {}
    for path in _pip_files(environ):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (OSError, configparser.Error, UnicodeDecodeError):
            continue  # pip itself would complain; an unreadable file names no index for us
        for section in ("global", "install"):
            if parser.has_section(section):
                values.update(
                    {k: v for k, v in parser.items(section) if k in ("index-url", "extra-index-url", "find-links")}
                )
    for key in ("index-url", "extra-index-url", "find-links"):
        variable = "PIP_" + key.upper().replace("-", "_")
        if environ.get(variable):
            values[key] = environ[variable]
    return IndexConfig(
        values.get("index-url", "").strip(),
        _existing(values.get("extra-index-url", "").split()),
        _existing(values.get("find-links", "").split()),
    )


def _existing(locations: list[str]) -> tuple[str, ...]:
    # pip skips a local location that does not exist with a warning; uv fails on one, so drop it.
    def present(location: str) -> bool:
        if location.startswith("file://"):
            return Path(location.removeprefix("file://")).exists()
        return "://" in location or Path(location).exists()

    return tuple(location for location in locations if present(location))


def index_config(settings: EnvironmentSettings, environ: Mapping[str, str] = os.environ) -> IndexConfig:
    if settings.index_url or settings.extra_index_urls or settings.find_links:
        return IndexConfig(settings.index_url, tuple(settings.extra_index_urls), tuple(settings.find_links))
    return from_pip(environ)
