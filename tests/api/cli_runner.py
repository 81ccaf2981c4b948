"""Running the real ``runlog`` command in-process, with RUNLOG_HOME in a temporary folder."""

from __future__ import annotations

from click.testing import CliRunner, Result

from runlog.api import cli as cli_module


def run_cli(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> Result:
    cli_module._register()
    return CliRunner().invoke(cli_module.cli, list(args), input=input, env=env, catch_exceptions=False)
