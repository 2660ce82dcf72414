"""``intunedd keys list|revoke`` against a real database file."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from intunedd.cli import CliContext, cli

ENV = {"INTUNEDD_CONFIG": None, "INTUNEDD_API_KEY": None, "INTUNEDD_URL": None}


def _invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, [*args, "--config", str(config)], obj=CliContext(), env=ENV)


def test_keys_list_and_revoke(tmp_path: Path) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    key = json.loads(_invoke(config, "--json", "keys", "create", "--name", "ci").stdout)["key"]

    listed = _invoke(config, "--json", "keys", "list")
    assert listed.exit_code == 0, listed.output
    [shown] = json.loads(listed.stdout)
    assert (shown["name"], shown["prefix"], shown["revokedAt"]) == ("ci", key[:8], None)
    assert key not in listed.stdout

    revoked = _invoke(config, "keys", "revoke", key[:8])
    assert revoked.exit_code == 0, revoked.output
    assert "revoked API key 'ci'" in revoked.stdout
    table = _invoke(config, "keys", "list").stdout.splitlines()
    assert table[0].split() == ["ID", "NAME", "PREFIX", "CREATED", "REVOKED"]
    assert table[1].endswith("Z")  # the revocation time

    again = _invoke(config, "keys", "revoke", "ci")
    assert again.exit_code == 1
    assert "(not-found)" in again.stderr


def test_ambiguous_revoke_is_refused(tmp_path: Path) -> None:
    config = tmp_path / "intunedd.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n')
    for _ in range(2):
        _invoke(config, "keys", "create", "--name", "twin")
    refused = _invoke(config, "keys", "revoke", "twin")
    assert refused.exit_code == 1
    assert "(ambiguous)" in refused.stderr
