"""kubestream.settings: one declaration gives every flag, variable, bound and value."""

import argparse
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubestream import StreamingContext, logs, settings
from kubestream.cli import COMMANDS, build_parser
from kubestream.errors import ConfigError
from kubestream.settings import RUNTIME, Reader, Setting, Values

NUMBERS = [s for s in RUNTIME if s.kind in (int, float)]


def parse(reader: Reader, argv: list[str], environ: dict[str, str]) -> Values:
    declared = settings.read_by(reader)
    parser = argparse.ArgumentParser(exit_on_error=False)
    settings.add_arguments(parser, declared, environ)
    return Values.parsed(parser.parse_args(argv), declared, environ)


def in_bounds(setting: Setting[Any]) -> st.SearchStrategy[Any]:
    low, high = setting.bounds
    if setting.kind is int:
        return st.integers(int(low if low is not None else -(2**31)), int(high or 2**31))
    return st.floats(low or 0, high or 1e9, allow_nan=False, exclude_min=setting.exclusive_minimum)


@pytest.mark.parametrize("setting", NUMBERS, ids=lambda s: s.name)
@given(data=st.data())
def test_a_value_written_as_a_variable_reads_back_unchanged(
    setting: Setting[Any], data: st.DataObject
) -> None:
    """The operator writes `format(v)`; the runtime must read exactly v back."""
    value = data.draw(in_bounds(setting))
    assert setting.parse(setting.format(value)) == value


@pytest.mark.parametrize("setting", [s for s in NUMBERS if s.minimum is not None], ids=str)
def test_out_of_bounds_is_refused_with_the_bounds(setting: Setting[Any]) -> None:
    below = setting.kind(setting.minimum if setting.exclusive_minimum else setting.minimum - 1)
    with pytest.raises(ValueError, match=f"must be .*{setting.minimum:g}"):
        setting.parse(str(below))


def test_each_flag_reads_its_variable_and_the_flag_wins() -> None:
    for reader in COMMANDS.values():
        for setting in settings.read_by(reader):
            if not setting.flag or setting.kind is not int or setting.minimum is None:
                continue
            value = int(setting.minimum) + 1
            environ = {setting.env: str(value)}
            assert parse(reader, [], environ)[setting] == value
            argv = [setting.option, str(value + 1)]
            assert parse(reader, argv, environ)[setting] == value + 1


@pytest.mark.parametrize(("text", "value"), [("true", True), ("1", True), ("No", False)])
def test_boolean_variables(text: str, value: bool) -> None:
    values = parse(Reader.DRIVER, [], {settings.BACKPRESSURE.env: text})
    assert values[settings.BACKPRESSURE] is value
    assert (
        parse(Reader.DRIVER, ["--no-backpressure"], {"KUBESTREAM_BACKPRESSURE": text})[
            settings.BACKPRESSURE
        ]
        is False
    )


def test_a_bad_boolean_variable_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="KUBESTREAM_WRITE_AHEAD_LOG: expected true or false"):
        parse(Reader.DRIVER, [], {"KUBESTREAM_WRITE_AHEAD_LOG": "maybe"})


def test_a_bad_number_names_the_flag_and_the_variable() -> None:
    with pytest.raises(argparse.ArgumentError, match="KUBESTREAM_MAX_RATE") as caught:
        parse(Reader.DRIVER, ["--max-rate", "2.5"], {})
    assert "--max-rate" in str(caught.value)
    assert "whole number" in str(caught.value)


def test_every_flag_of_every_command_shows_its_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, reader in COMMANDS.items():
        with pytest.raises(SystemExit):
            build_parser().parse_args([name, "--help"])
        helptext = " ".join(capsys.readouterr().out.split())
        for setting in settings.read_by(reader):
            if setting.flag:
                assert f"{setting.option} " in helptext, (name, setting.name)
                assert f"[env: {setting.env}]" in helptext, (name, setting.name)
            else:
                named = re.search(rf"\b{setting.env}\b", helptext)
                assert named is None, "keys are read from variables only"


def test_names_are_unique_and_follow_the_flag() -> None:
    assert len({s.name for s in RUNTIME}) == len(RUNTIME)
    for s in RUNTIME:
        assert s.env == "KUBESTREAM_" + s.option[2:].replace("-", "_").upper()
        s.check(s.default)


def test_log_formats_are_the_loggers() -> None:
    assert settings.LOG_FORMAT.choices == logs.FORMATS


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"batch_interval": 0.05}, ["batch_interval", "between 0.1 and 3600 seconds"]),
        ({"max_rate": 0}, ["max_rate", "between 1 and"]),
        ({"checkpoint_interval": 0}, ["checkpoint_interval", "0.1"]),
        ({"on_batch_failure": "retry"}, ["on_batch_failure", "report, continue, stop"]),
    ],
)
def test_streaming_context_takes_the_bounds_of_the_declaration(
    kwargs: dict[str, Any], words: list[str]
) -> None:
    with pytest.raises(ConfigError) as caught:
        StreamingContext(**kwargs)
    for word in words:
        assert word in str(caught.value)


def test_config_directory_reads_as_a_config_map_mounts_it(tmp_path: Path) -> None:
    stamped = tmp_path / "..2026_11_30_15_00_00.1"
    stamped.mkdir()
    (stamped / "topic").write_text("clicks")
    (stamped / "empty").write_text("")
    (tmp_path / "..data").symlink_to(stamped.name)
    for key in ("topic", "empty"):
        (tmp_path / key).symlink_to(f"..data/{key}")
    (tmp_path / "nested").mkdir()
    assert settings.read_config_dir(str(tmp_path)) == {"empty": "", "topic": "clicks"}


def test_the_application_sees_its_configuration_read_only() -> None:
    ssc = StreamingContext(1.0, conf={"topic": "clicks"})
    try:
        assert ssc.conf == {"topic": "clicks"}
        with pytest.raises(TypeError):
            ssc.conf["topic"] = "other"  # type: ignore[index]
    finally:
        ssc.stop()


def test_arguments_written_for_a_process_parse_back() -> None:
    """A launcher (local executors) writes flags the command reads back unchanged."""
    written: list[tuple[Setting[Any], Any]] = [
        (settings.DRIVER_PORT, 7001),
        (settings.HEARTBEAT_INTERVAL, 0.25),
        (settings.EXECUTOR_ID, "exec-1"),
        (settings.LOG_FORMAT, "json"),
    ]
    values = parse(Reader.EXECUTOR, settings.arguments(written), {})
    assert [values[s] for s, _ in written] == [v for _, v in written]
    on = parse(Reader.DRIVER, settings.arguments([(settings.BACKPRESSURE, True)]), {})
    assert on[settings.BACKPRESSURE] is True
    off = settings.arguments([(settings.BACKPRESSURE, False)])
    assert (
        parse(Reader.DRIVER, off, {"KUBESTREAM_BACKPRESSURE": "true"})[settings.BACKPRESSURE]
        is False
    )


def test_the_kafka_consumer_pool_size_is_an_executor_setting_with_bounds() -> None:
    size = settings.KAFKA_CONSUMER_POOL_SIZE
    assert parse(Reader.EXECUTOR, [], {size.env: "200"})[size] == 200
    assert parse(Reader.RUN, ["--kafka-consumer-pool-size", "3"], {})[size] == 3
    assert parse(Reader.EXECUTOR, [], {})[size] == 64
    with pytest.raises(argparse.ArgumentError, match="KUBESTREAM_KAFKA_CONSUMER_POOL_SIZE"):
        parse(Reader.EXECUTOR, ["--kafka-consumer-pool-size", "0"], {})
    assert size not in settings.read_by(Reader.DRIVER)
