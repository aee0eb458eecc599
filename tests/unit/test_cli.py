import pytest

from rankops.cli.main import build_parser, main


def test_help_lists_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_subcommand_exits_nonzero() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["no-such-command"])
    assert exc.value.code == 2


def test_serve_port_flag_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from rankops.serving.commands import serve_port

    monkeypatch.delenv("RANKOPS_PORT", raising=False)
    assert serve_port(None) == 8080
    monkeypatch.setenv("RANKOPS_PORT", "9000")
    assert serve_port(None) == 9000
    assert serve_port(9100) == 9100


@pytest.mark.parametrize("bad", ["http", "70000", "-1", "80.5"])
def test_serve_with_a_bad_rankops_port_exits_2_naming_it(
    bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("RANKOPS_PORT", bad)
    assert main(["serve", "--model", "file:///nowhere"]) == 2
    err = capsys.readouterr().err
    assert "RANKOPS_PORT" in err and repr(bad) in err


@pytest.mark.parametrize("bad", ["many", "0", "-3", "1.5"])
def test_serve_with_a_bad_rankops_query_batch_exits_2_naming_it(
    bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RANKOPS_PORT", raising=False)
    monkeypatch.setenv("RANKOPS_QUERY_BATCH", bad)
    assert main(["serve", "--model", "file:///nowhere"]) == 2
    assert "RANKOPS_QUERY_BATCH" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["soon", "-0.001", "2", "nan"])
def test_serve_with_a_bad_gil_switch_interval_exits_2_naming_it(
    bad: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RANKOPS_PORT", raising=False)
    monkeypatch.delenv("RANKOPS_QUERY_BATCH", raising=False)
    monkeypatch.setenv("RANKOPS_GIL_SWITCH_INTERVAL_S", bad)
    assert main(["serve", "--model", "file:///nowhere"]) == 2
    assert "RANKOPS_GIL_SWITCH_INTERVAL_S" in capsys.readouterr().err
