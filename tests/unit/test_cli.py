"""CLI pieces that need neither AWS nor the .so: parsing, init_config building, formats, field table."""

from __future__ import annotations

import argparse
import io

import orjson
import pytest

from k8saudit_eks_py.cli import build_parser, main
from k8saudit_eks_py.cli.fields import rows
from k8saudit_eks_py.cli.options import parse_duration
from k8saudit_eks_py.cli.tail import build_config
from k8saudit_eks_py.event_loop import Progress
from k8saudit_eks_py.host import FieldInfo, _api_compatible
from k8saudit_eks_py.output_format import DEFAULT_FORMAT, FormatError, Formatter, render_value


def _field(
    i: int, name: str, *, lst: bool = False, index: bool = False, key: bool = False, req: bool = False
):
    return FieldInfo(i, name, "string", lst, req, index, key, "")


FIELDS = {
    f.name: f
    for f in (
        _field(0, "ka.user.name"),
        _field(1, "ka.verb"),
        _field(2, "ka.uri.param", key=True, req=True),
        _field(3, "ka.req.pod.containers.image", lst=True, index=True),
        _field(4, "ka.target.name"),
        _field(5, "ka.target.namespace"),
        _field(6, "ka.target.resource"),
    )
}


def test_every_subcommand_is_wired() -> None:
    parser = build_parser()
    for argv in (
        ["demo"],
        [
            "check",
            "c1",
            "--region",
            "eu-west-1",
            "--profile",
            "p",
            "--role-arn",
            "arn:x",
            "--endpoint-url",
            "u",
        ],
        ["tail", "c1", "-o", "%ka.verb", "--since", "15m", "--config", "{}", "--count", "3"],
        ["fields", "--json"],
        ["library-path"],
    ):
        args = parser.parse_args(argv)
        assert callable(args.func), argv
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("15m", 900), ("2h", 7200), ("1d", 86400), ("1.5m", 90)]
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "m", "10x", "-5m", "ten"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        parse_duration(text)


def test_build_config_merges_options_over_config_json() -> None:
    args = build_parser().parse_args(
        [
            "tail",
            "demo",
            "--since",
            "10m",
            "--region",
            "eu-west-1",
            "--config",
            '{"region":"x","lookback":30}',
        ]
    )
    assert build_config(args) == {"region": "eu-west-1", "lookback": 30, "shift": 600}
    for bad in ("[1]", "{nope"):
        args = build_parser().parse_args(["tail", "demo", "--config", bad])
        with pytest.raises(ValueError, match="--config"):
            build_config(args)


def test_render_value_is_falcos_text() -> None:
    assert render_value(None) == "<NA>"
    assert render_value("x") == "x"
    assert render_value(("a", "b")) == "(a,b)"
    assert render_value(("a",)) == "(a)"
    assert render_value(True) == "true"
    assert render_value(7) == "7"


def test_formatter_compiles_fields_args_and_literal_text() -> None:
    f = Formatter(
        "%evt.time who=%ka.user.name. w=%ka.uri.param[watch] i=%ka.req.pod.containers.image[0]%%", FIELDS
    )
    refs = [(r.name, r.arg) for r in f.refs]
    assert refs == [
        ("evt.time", None),
        ("ka.user.name", None),
        ("ka.uri.param", "watch"),
        ("ka.req.pod.containers.image", "0"),
    ]
    literal = [p for p in f.parts if isinstance(p, str)]
    assert literal == ["", " who=", ". w=", " i=", "%%"]
    assert [r.name for r in Formatter(DEFAULT_FORMAT, FIELDS).refs] == [
        "ka.user.name",
        "ka.verb",
        "ka.target.name",
        "ka.target.namespace",
        "ka.target.resource",
    ]


@pytest.mark.parametrize(
    ("fmt", "message"),
    [
        ("%ka.nope", "unknown field %ka.nope"),
        ("%ka.uri.param", "requires an argument"),
        ("%ka.verb[x]", "does not take an argument"),
        ("%ka.req.pod.containers.image[01]", "numeric index"),
        ("%evt.time[1]", "does not take an argument"),
    ],
)
def test_formatter_rejects_what_falco_rejects(fmt: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Formatter(fmt, FIELDS)


def test_api_version_rule_matches_falcos_loader() -> None:
    assert _api_compatible("3.0.0", "3.0.0")
    assert not _api_compatible("3.1.0", "3.0.0")
    assert not _api_compatible("3.0.1", "3.0.0")
    assert not _api_compatible("2.0.0", "3.0.0")
    assert not _api_compatible("3.0", "3.0.0")


def test_progress_line_reads_plugin_metric_names() -> None:
    metrics = [("lag_seconds", 1, 4.25), ("queue_depth", 1, 12.0), ("throttles", 0, 3), ("errors", 0, 0)]
    assert Progress.line(120, 24.0, metrics) == (
        "[k8saudit-eks-py] 120 events, 24.0/s, lag 4.2s, queued 12, throttles 3"
    )


def test_progress_ticks_on_its_interval_only() -> None:
    now = [100.0]
    out = io.StringIO()

    class FakeState:
        def metrics(self) -> list[tuple[str, int, int | float]]:
            return [("lag_seconds", 1, 1.0)]

    p = Progress(5.0, stream=out, clock=lambda: now[0])
    p.tick(10, FakeState())  # type: ignore[arg-type]
    now[0] += 5.0
    p.tick(60, FakeState())  # type: ignore[arg-type]
    now[0] += 1.0
    p.tick(70, FakeState())  # type: ignore[arg-type]
    assert out.getvalue() == "[k8saudit-eks-py] 60 events, 12.0/s, lag 1.0s\n"


def test_fields_table_rows_from_the_catalog() -> None:
    from k8saudit_eks_py.fields import FIELDS_JSON

    table = rows(FIELDS_JSON)
    assert len(table) == len(orjson.loads(FIELDS_JSON)) == 100
    by_name = {r[0]: r for r in table}
    assert by_name["ka.uri.param"][2] == "arg:key"
    assert by_name["ka.req.pod.containers.image"][2].startswith("list,arg")
    assert by_name["ka.user.name"][1] == "string"


def test_fields_command_prints_every_field(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["fields"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FIELD")
    assert any(line.startswith("ka.user.name ") for line in out)
    assert out[-1].startswith("100 fields")
    assert main(["fields", "--json"]) == 0
    assert len(orjson.loads(capsys.readouterr().out)) == 100


def test_unknown_option_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--bogus"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --bogus" in err and "required" not in err


def test_missing_command_lists_the_commands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    assert (
        "a COMMAND is required: demo, check, tail, fields, library-path, package" in capsys.readouterr().err
    )


def _help(*argv: str) -> str:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[argv[0]].format_help() if argv else parser.format_help()


def test_every_command_has_a_description() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, command in sub.choices.items():
        assert command.description and len(command.description) > 40, name


def test_tail_help_names_its_argument_as_the_usage_line_does() -> None:
    text = _help("tail")
    assert "TARGET" not in text
    assert "CLUSTER|kinesis://STREAM|file://PATH" in text.split("\n\n")[0]  # usage line
    assert "CLUSTER is an EKS cluster name" in " ".join(text.split())


@pytest.mark.parametrize(
    ("command", "option"), [("tail", "--since"), ("tail", "--duration"), ("check", "--window")]
)
def test_time_options_show_their_format(command: str, option: str) -> None:
    text = " ".join(_help(command).split())
    assert f"{option} TIME" in text
    assert "TIME like 90s, 15m, 2h or 1d" in text.rsplit(f"{option} TIME", 1)[1].split(" --", 1)[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tail", "c", "--count", "0"], "must be 1 or more"),
        (["tail", "c", "--count", "-1"], "must be 1 or more"),
        (["tail", "c", "--progress-interval", "-2"], "must be 0 or more"),
        (["tail", "c", "--progress-interval", "nan"], "not a finite number"),
        (["tail", "c", "--duration", "0s"], "must be at least 1 second"),
        (["demo", "--timeout", "-1"], "must be greater than 0"),
        (["demo", "--timeout", "0"], "must be greater than 0"),
        (["check", "c", "--window", "0"], "must be at least 1 second"),
    ],
)
def test_numeric_flags_reject_nonsense(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err
