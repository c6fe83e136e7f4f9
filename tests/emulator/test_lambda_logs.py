"""The handlers' log lines: every line in the function's log file (the local /aws/lambda/<function>),
on the terminal only through the progress printer (none with --quiet), whole and in their place
among the states; an unhandled error's traceback in the log file, not on the terminal."""

from __future__ import annotations

import io
import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emulator.lambdas import LocalLambda, function_log
from emulator.progress import Progress
from emulator.template import FunctionSpec

HANDLERS = """
import sys

from aws_lambda_powertools import Logger

logger = Logger(service="fixture-logs")


def logs(event, context):
    logger.info("validated", extra={"rows": event["rows"]})
    print("plain print", "in", "pieces", sep=" ", end="")
    print(" and its end")
    return {"ok": True}


def fails(event, context):
    logger.info("about to fail")
    raise ValueError("the dataset has no header")
"""


def _spec(root: Path, logical_id: str, handler: str) -> FunctionSpec:
    return FunctionSpec(
        logical_id=logical_id,
        name=f"local-{logical_id}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:local-{logical_id}",
        code_uri=root,
        handler=handler,
        timeout=30,
        memory_size=128,
        environment={},
    )


class _Stack(SimpleNamespace):
    def function_by_name(self, name: str) -> FunctionSpec | None:
        return next((s for s in self.functions.values() if name in (s.name, s.logical_id)), None)


@pytest.fixture
def host(tmp_path: Path) -> Any:
    code = tmp_path / "code"
    code.mkdir()
    (code / "log_handlers.py").write_text(HANDLERS)
    stack = _Stack(
        functions={
            "LogsFunction": _spec(code, "LogsFunction", "log_handlers.logs"),
            "FailsFunction": _spec(code, "FailsFunction", "log_handlers.fails"),
        }
    )
    lines: list[tuple[str, str]] = []
    notes: list[str] = []
    lambdas = LocalLambda(
        stack,  # type: ignore[arg-type]
        log=notes.append,
        log_dir=tmp_path / "logs" / "lambda",
        log_line=lambda function, line: lines.append((function, line)),
    )
    try:
        yield SimpleNamespace(lambdas=lambdas, lines=lines, notes=notes, log_dir=tmp_path / "logs" / "lambda")
    finally:
        lambdas.close()


def test_a_handlers_log_lines_go_to_its_log_file_and_the_sink_not_to_stdout(
    host: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    response = host.lambdas.invoke(FunctionName="LogsFunction", Payload=json.dumps({"rows": 3}))

    assert json.loads(response["Payload"].read()) == {"ok": True}
    out, err = capfd.readouterr()
    assert "validated" not in out + err and "plain print" not in out + err
    shown = [line for function, line in host.lines if function == "local-LogsFunction"]
    assert json.loads(shown[0])["message"] == "validated" and json.loads(shown[0])["rows"] == 3
    assert shown[1] == "plain print in pieces and its end"  # whole, though written in three pieces
    logged = function_log(host.log_dir, "local-LogsFunction").read_text().splitlines()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert logged[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert logged[1:3] == shown
    assert logged[3] == f"END RequestId: {request_id}"
    assert logged[4].startswith(f"REPORT RequestId: {request_id}\tDuration: ")


def test_an_unhandled_errors_traceback_goes_to_the_log_file_and_the_note_names_it(
    host: Any, capfd: pytest.CaptureFixture[str]
) -> None:
    response = host.lambdas.invoke(FunctionName="FailsFunction", Payload=b"{}")

    assert response["FunctionError"] == "Unhandled"
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err
    assert all("Traceback" not in line for _function, line in host.lines)
    path = function_log(host.log_dir, "local-FailsFunction")
    text = path.read_text()
    assert "[ERROR] ValueError: the dataset has no header" in text
    assert "Traceback (most recent call last):" in text and 'raise ValueError("the dataset' in text
    assert host.notes == [f"FailsFunction raised ValueError: the dataset has no header (log: {path})"]


def test_concurrent_invocations_keep_each_line_whole_and_with_its_function(host: Any) -> None:
    threads = [
        threading.Thread(
            target=host.lambdas.invoke,
            kwargs={"FunctionName": "LogsFunction", "Payload": json.dumps({"rows": i})},
        )
        for i in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    shown = [line for _function, line in host.lines]
    assert sorted(json.loads(line)["rows"] for line in shown if line.startswith("{")) == list(range(8))
    assert shown.count("plain print in pieces and its end") == 8


def test_without_a_log_dir_or_sink_the_lines_stay_on_stdout(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    code = tmp_path / "code"
    code.mkdir()
    (code / "log_handlers.py").write_text(HANDLERS)
    stack = _Stack(functions={"LogsFunction": _spec(code, "LogsFunction", "log_handlers.logs")})
    lambdas = LocalLambda(stack)  # type: ignore[arg-type]
    try:
        lambdas.invoke(FunctionName="LogsFunction", Payload=json.dumps({"rows": 1}))
    finally:
        lambdas.close()

    assert "plain print in pieces and its end" in capfd.readouterr().out


def _event(kind: str, at: datetime, name: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "timestamp": at}
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": name}
    elif kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": name}
    return event


def test_a_handler_line_is_printed_after_the_state_it_ran_in_though_the_history_is_read_later() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream, trace_dir=Path("unused"))
    now = datetime.now(UTC)
    history = [
        _event("ExecutionStarted", now - timedelta(seconds=2)),
        _event("TaskStateEntered", now - timedelta(seconds=1), "PrepareRun"),
    ]

    progress.handler_line("local-PrepareRun", '{"message":"run prepared"}')  # the state is running
    assert stream.getvalue() == ""  # held: the history that comes before it is not shown yet
    progress.events("e1", history)  # what the waiter reads half a second later
    history.append(_event("TaskStateExited", now + timedelta(seconds=1), "PrepareRun"))
    progress.events("e1", history)

    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[-1] for line in lines] == [
        "execution e1 started",
        "-> PrepareRun",
        '    | local-PrepareRun | {"message":"run prepared"}',
        "<- PrepareRun ok (2.00 s)",
    ]


def test_flush_prints_the_lines_no_history_event_followed() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream)

    progress.handler_line("local-Api", "GET /models")
    progress.flush()

    assert stream.getvalue() == "    | local-Api | GET /models\n"


def test_quiet_prints_no_handler_line() -> None:
    stream = io.StringIO()
    progress = Progress(stream=stream, verbose_jobs=False)

    progress.handler_line("local-Api", "GET /models")
    progress.flush()
    progress.events("e1", [_event("ExecutionStarted", datetime.now(UTC))])

    assert "local-Api" not in stream.getvalue()
