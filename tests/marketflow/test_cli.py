"""The one entry point: every documented subcommand is wired and documented in --help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from marketflow.cli import COMMANDS, _load, build_parser


def test_every_design_command_is_built() -> None:
    missing = [name for name in COMMANDS if _load(name) is None]
    assert missing == [], f"subcommands without a module: {missing}"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_subcommand_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([name, "--help"])
    assert exit_info.value.code == 0
    assert name in capsys.readouterr().out


def test_console_script_help_is_fast_and_lists_commands() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "marketflow.cli", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    for name in COMMANDS:
        assert name in out


def test_verbose_logging_keeps_credential_carrying_libraries_quiet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import logging

    from marketflow.cli import QUIET_LOGGERS, configure_logging

    for name in QUIET_LOGGERS:  # restored after the test
        monkeypatch.setattr(logging.getLogger(name), "level", logging.NOTSET)
    monkeypatch.setattr(logging.getLogger(), "level", logging.WARNING)
    configure_logging(verbose=True)
    logging.getLogger().setLevel(logging.DEBUG)  # basicConfig is a no-op under pytest
    assert logging.getLogger("marketflow").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("websockets.client").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpcore.http11").isEnabledFor(logging.DEBUG)
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
