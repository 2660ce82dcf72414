from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from intunedd.config import ConfigError, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = [name for name in Settings.__struct_fields__ if isinstance(getattr(Settings(), name), msgspec.Struct)]


def test_shipped_config_lists_every_setting_with_its_default() -> None:
    shipped = load_settings(str(ROOT / "config" / "intunedd.toml"), {"INTUNEDD_STATE_DIR": "/x"})
    assert shipped == load_settings(None, {"INTUNEDD_STATE_DIR": "/x", "INTUNEDD_CONFIG": "/nonexistent"})
    text = (ROOT / "config" / "intunedd.toml").read_text()
    for section in SECTIONS:
        for name in getattr(Settings(), section).__struct_fields__:
            documented = f"{name} =" in text or f"[{section}.{name}]" in text
            assert documented, f"config/intunedd.toml does not document {section}.{name}"


def test_environment_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('state_dir = "/a"\n[pool]\nsize = 3\n')
    settings = load_settings(str(config), {"INTUNEDD_POOL_SIZE": "5", "INTUNEDD_RUNS_RECORD_VIDEO": "true"})
    assert settings.pool.size == 5
    assert settings.runs.record_video is True
    assert settings.state_dir == "/a"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[pool]\nsizes = 3\n", "sizes"),
        ("[pool]\nsize = 'many'\n", "size"),
        ("[pool]\nsize = 0\n", "pool.size"),
        ("[collections]\nallowed_networks = ['10.0.0.0/33']\n", "collections.allowed_networks"),
        ("[collections]\nrequests_per_minute = -1\n", "requests_per_minute"),
        ("[server\n", "intunedd.toml"),
        ("[[pool.remote_endpoints]]\nurl = 'http://b:3000/'\n", r"remote_endpoints\[0\]\.url: a playwright endpoint"),
        ("[[pool.remote_endpoints]]\nurl = 'ws://b:3000/'\ncapacity = 0\n", "capacity"),
        ("[[pool.remote_endpoints]]\nurl = 'ws://b/'\nport = 1\n", "port"),
        ("[pool]\nremote_endpoint = 'ws://a/'\n[[pool.remote_endpoints]]\nurl = 'ws://b/'\n", "one or the other"),
        ("[pool]\nremote_endpoint = 'b:3000'\n", "pool.remote_endpoint: a playwright endpoint"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(str(config), {})


def test_state_dir_follows_systemd() -> None:
    assert load_settings(None, {"STATE_DIRECTORY": "/var/lib/intunedd", "INTUNEDD_CONFIG": ""}).state_dir == (
        "/var/lib/intunedd"
    )


def test_environment_values_take_the_schema_type() -> None:
    settings = load_settings(
        None,
        {
            "INTUNEDD_CONFIG": "",
            "INTUNEDD_STATE_DIR": "/x",
            "INTUNEDD_SINKS_SIGNING_SECRET": "123456",
            "INTUNEDD_RUNS_DRAIN_TIMEOUT_S": "5",
            "INTUNEDD_POOL_BROWSER_ARGS": '["--a", "--b"]',
            "INTUNEDD_WORKSPACE_ID": "42",
        },
    )
    assert settings.sinks.signing_secret == "123456"
    assert settings.runs.drain_timeout_s == 5.0
    assert settings.pool.browser_args == ["--a", "--b"]
    assert settings.workspace_id == "42"


def test_unknown_environment_setting_is_refused() -> None:
    with pytest.raises(ConfigError, match="sizes"):
        load_settings(None, {"INTUNEDD_CONFIG": "", "INTUNEDD_POOL_SIZES": "3"})


def test_browser_hosts_set_the_pool_capacity(tmp_path: Path) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(
        "[pool]\nsize = 9\n"
        "[[pool.remote_endpoints]]\nurl = 'ws://a:3000/'\ncapacity = 3\n"
        "[[pool.remote_endpoints]]\nurl = 'http://b:9222'\nprotocol = 'cdp'\n"
    )
    pool = load_settings(str(config), {}).pool
    assert [(h.url, h.protocol, h.capacity) for h in pool.hosts] == [
        ("ws://a:3000/", "playwright", 3),
        ("http://b:9222", "cdp", 1),
    ]
    assert pool.capacity == 4
    config.write_text("[pool]\nsize = 3\nremote_endpoint = 'ws://a:3000/'\n")
    single = load_settings(str(config), {}).pool
    assert [(h.url, h.capacity) for h in single.hosts] == [("ws://a:3000/", 3)] and single.capacity == 3
    config.write_text("[pool]\nsize = 3\n")
    assert load_settings(str(config), {}).pool.hosts == []
