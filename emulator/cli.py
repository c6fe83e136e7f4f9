"""`python -m emulator`: run the pipeline locally, inspect executions and the registry, serve the API.

    run --dataset PATH [--score PATH] [--model-name NAME] [--algorithm NAME] [--json]
        Uploads PATH under the datasets prefix. Without --score/--model-name/--algorithm the
        execution starts from the upload itself, through the template's EventBridge rule (the S3
        trigger's input). An upload event cannot carry those options, so with any of them the file
        is stored without firing the trigger and the execution starts with the console/API input
        {"datasetUri", "scoreUri", "modelName", "algorithm"} instead.
    start --input FILE      an execution input exactly as the console or the API sends it
    executions              the recorded executions
    history NAME            one execution's events (JSON)
    models [--json]         the registry, through the API's GET /models
        executions, history and models only read the saved state: they take no lock, so they work
        while `api` or `run` holds the state dir, and create nothing.
    api [--port N]          the REST API on localhost (POST /training starts a local execution)

The Lambda handlers' own log lines (Powertools JSON, print) are kept in
<state-dir>/logs/lambda/<function>.log, the local CloudWatch Logs /aws/lambda/<function>, with each
unhandled error's traceback; the progress shows them in place among the states (--quiet: not at all).

Every command takes --state-dir (default .local/). Progress goes to stderr; with --json stdout holds
exactly one JSON document. Exit status 0 when the execution succeeded, 1 when it failed, 2 for a
usage or input error, 141 (SIGPIPE's) without a word when stdout's reader went away (`| head -1`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from emulator.progress import Progress
from emulator.state import DEFAULT_STATE_DIR, PROJECT_ROOT, StateDir

if TYPE_CHECKING:  # moto is imported only by the commands that start a runtime (a second or two)
    from emulator.runtime import LocalRuntime

EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PIPE_CLOSED = 128 + signal.SIGPIPE


@contextlib.contextmanager
def _stdout_reserved() -> Iterator[TextIO]:
    """Everything the run prints (handlers' logs, jobs, libraries) goes to stderr; the returned
    stream is the real stdout, kept for the result (the summary, or the one JSON document)."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    real = os.fdopen(saved, "w", closefd=True)
    try:
        yield real
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        real.flush()
        real.close()


def _parse_overrides(items: list[str] | None, what: str) -> dict[str, str]:
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"{what} must be KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def _runtime(args: argparse.Namespace, progress: Progress) -> LocalRuntime:
    from emulator.runtime import LocalRuntime

    return LocalRuntime(
        Path(args.project),
        Path(args.state_dir),
        parameters=_parse_overrides(args.parameter, "--parameter"),
        environment=_parse_overrides(args.env, "--env"),
        progress=progress,
        lock_wait_seconds=args.lock_wait,
    )


def _finish(
    runtime: LocalRuntime, record: dict[str, Any], args: argparse.Namespace, out: TextIO, started: float
) -> int:
    from emulator.summary import render, summarize

    runtime.progress.flush()  # the handlers' last lines before the summary
    summary = summarize(runtime, record)
    log_dir = runtime.progress.lambda_log_dir
    if log_dir is not None and log_dir.is_dir():
        summary["lambda_logs"] = str(log_dir)
        runtime.progress.note(f"the functions' logs (CloudWatch Logs /aws/lambda/<function>): {log_dir}")
    runtime.progress.flush()  # what the summary's own API calls logged
    summary["seconds"] = round(time.monotonic() - started, 3)
    summary["job_seconds"] = {k: round(v, 3) for k, v in runtime.sagemaker.job_seconds().items()}
    summary["startup_seconds"] = round(runtime.startup_seconds, 3)
    summary["lambda_seconds"] = round(sum(seconds for _name, seconds in runtime.lambdas.invocations), 3)
    # CPU, unlike wall time, hardly moves when other work shares the machine: the comparable figure
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    summary["cpu_seconds"] = {
        "runtime": round(own.ru_utime + own.ru_stime, 3),  # this process: moto, handlers, staging
        "jobs": round(children.ru_utime + children.ru_stime, 3),  # the job processes (and bundle build)
    }
    if args.json:
        out.write(json.dumps(summary, default=str) + "\n")
    else:
        print(render(summary), file=out)
    return 0 if summary["status"] == "SUCCEEDED" else EXIT_FAILED


def cmd_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    dataset = Path(args.dataset)
    if not dataset.is_file():
        print(f"error: no such dataset file: {dataset}", file=sys.stderr)
        return EXIT_USAGE
    if args.score and not Path(args.score).is_file():
        print(f"error: no such score file: {args.score}", file=sys.stderr)
        return EXIT_USAGE
    with _stdout_reserved() as out:
        progress = Progress(verbose_jobs=not args.quiet)
        with _runtime(args, progress) as runtime:
            if args.score or args.model_name or args.algorithm:
                body: dict[str, Any] = {"datasetUri": runtime.put_file(dataset, runtime.datasets_prefix)}
                if args.score:
                    body["scoreUri"] = runtime.put_file(Path(args.score), runtime.scoring_prefix)
                if args.model_name:
                    body["modelName"] = args.model_name
                if args.algorithm:
                    body["algorithm"] = args.algorithm
                progress.note(f"starting with the console/API input {json.dumps(body)}")
                record = runtime.run(body)
            else:
                progress.note(f"uploading {dataset} to s3://{runtime.stack.bucket}/{runtime.datasets_prefix}")
                record = runtime.run_upload(dataset)
            return _finish(runtime, record, args, out, started)


def cmd_start(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        execution_input = json.loads(Path(args.input).read_text())
    except (OSError, ValueError) as exc:
        print(f"error: cannot read the execution input {args.input}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    with _stdout_reserved() as out, _runtime(args, Progress(verbose_jobs=not args.quiet)) as runtime:
        record = runtime.run(execution_input, name=args.name)
        return _finish(runtime, record, args, out, started)


def cmd_executions(args: argparse.Namespace) -> int:
    records = list(StateDir(Path(args.state_dir)).executions())
    if args.json:
        keys = ("name", "status", "startDate", "stopDate", "error", "cause")
        print(json.dumps({"executions": [{k: r.get(k) for k in keys} for r in records]}))
        return 0
    for record in records:
        error = f"  {record['error']}" if record.get("error") else ""
        print(f"{record['startDate']}  {record['status']:<9}  {record['name']}{error}")
    if not records:
        print(f"no executions recorded in {args.state_dir}", file=sys.stderr)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    record = StateDir(Path(args.state_dir)).execution(args.name)
    if record is None:
        print(f"error: no execution {args.name} in {args.state_dir}", file=sys.stderr)
        return EXIT_USAGE
    print(
        json.dumps({"name": record["name"], "status": record["status"], "events": record["events"]}, indent=1)
    )
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    """Read-only: the registry as last saved, beside a runtime that may hold the state dir."""
    from emulator.registry_view import registry_api
    from emulator.summary import model_line, registry_rows

    state_dir = Path(args.state_dir)
    with _stdout_reserved() as out:
        rows = []
        if (state_dir / "registry.json").exists():  # else nothing is registered (and nothing is created)
            with registry_api(
                Path(args.project),
                state_dir,
                parameters=_parse_overrides(args.parameter, "--parameter"),
                environment=_parse_overrides(args.env, "--env"),
            ) as api:
                rows = registry_rows(api)
        if args.json:
            out.write(json.dumps({"models": rows}, default=str) + "\n")
        else:
            for row in rows:
                print(model_line(row), file=out)
            if not rows:
                print("no model versions registered", file=out)
    return 0


def cmd_api(args: argparse.Namespace) -> int:
    from emulator.api import serve
    from emulator.endpoint import AwsEndpoint
    from emulator.template import REGION

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {args.host}: the REST API and the AWS endpoint have NO authentication "
            "(anyone who can reach this address can read and change the local state)",
            file=sys.stderr,
        )
    with _runtime(args, Progress(verbose_jobs=not args.quiet)) as runtime:
        server = serve(runtime, host=args.host, port=args.port)
        routes = ", ".join(f"{r.method} {r.resource}" for r in runtime.api.routes)
        runtime.progress.note(
            f"serving http://{args.host}:{server.server_address[1]} ({routes}); Ctrl-C stops"
        )
        try:
            endpoint = AwsEndpoint(runtime, host=args.host, port=args.aws_port).start()
        except OSError as exc:  # the port is taken (another local AWS tool?) or the host is not ours
            server.server_close()
            print(
                f"error: cannot serve the AWS endpoint on {args.host}:{args.aws_port}: {exc} "
                "(pass another --aws-port)",
                file=sys.stderr,
            )
            return EXIT_USAGE
        runtime.progress.note(
            f"AWS endpoint {endpoint.url} (S3, Step Functions, DynamoDB, SNS, SQS, EventBridge, CloudWatch "
            f"Logs, SageMaker job reads): export AWS_ENDPOINT_URL={endpoint.url} AWS_ACCESS_KEY_ID=test "
            f"AWS_SECRET_ACCESS_KEY=test AWS_DEFAULT_REGION={REGION}; the topic's notifications: SQS queue "
            + ", ".join(url.rsplit("/", 1)[1] for url in runtime.notification_queues.values())
        )
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            endpoint.stop()
            server.stopped.set()  # type: ignore[attr-defined]
            server.server_close()
    return 0


def request_algorithms() -> list[str]:
    """The algorithms a training request may name: the input schema's enum, the one definition
    (read as JSON: the CLI imports neither the functions nor the pipelines)."""
    schema = json.loads((PROJECT_ROOT / "functions" / "input.schema.json").read_text())
    return list(schema["oneOf"][0]["properties"]["algorithm"]["enum"])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emulator", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--state-dir", default=str(DEFAULT_STATE_DIR), help="where the local state lives")
    common.add_argument("--project", default=str(PROJECT_ROOT), help=argparse.SUPPRESS)
    common.add_argument(
        "--parameter",
        action="append",
        metavar="KEY=VALUE",
        help="template parameter override (e.g. MinRocAuc=0.99)",
    )
    common.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="function environment override (e.g. MIN_ROC_AUC=0.99)",
    )
    common.add_argument(
        "--lock-wait",
        type=float,
        default=0.0,
        help="seconds to wait for another process using the same state dir",
    )
    common.add_argument(
        "--quiet",
        action="store_true",
        help="do not stream the jobs' and the functions' log lines (their log files keep them)",
    )
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", parents=[common], help="upload a dataset and run the pipeline")
    run.add_argument("--dataset", required=True)
    run.add_argument("--score", help="a file to batch-score (default: the dataset itself)")
    run.add_argument("--model-name")
    run.add_argument(
        "--algorithm",
        choices=request_algorithms(),
        help="the estimator (default: the stack's DefaultAlgorithm)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    run.set_defaults(func=cmd_run)

    start = sub.add_parser("start", parents=[common], help="start an execution with a console/API input")
    start.add_argument("--input", required=True)
    start.add_argument("--name", help="execution name (default: a UUID, as the console does)")
    start.add_argument("--json", action="store_true")
    start.set_defaults(func=cmd_start)

    executions = sub.add_parser("executions", parents=[common], help="list the recorded executions")
    executions.add_argument("--json", action="store_true")
    executions.set_defaults(func=cmd_executions)

    history = sub.add_parser("history", parents=[common], help="one execution's history events")
    history.add_argument("name")
    history.set_defaults(func=cmd_history)

    models = sub.add_parser("models", parents=[common], help="the model registry (GET /models)")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=cmd_models)

    api = sub.add_parser("api", parents=[common], help="serve the REST API on localhost")
    api.add_argument("--port", type=int, default=3000)
    api.add_argument(
        "--aws-port",
        type=int,
        default=4566,
        help="the local AWS endpoint for the AWS CLI and boto3 (AWS_ENDPOINT_URL); 0 picks a free port",
    )
    api.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind both servers to (anything but loopback is served without authentication)",
    )
    api.set_defaults(func=cmd_api)
    return parser


def _reader_gone() -> int:
    """`... | head -1`: the reader closed the pipe. End as a Unix tool ends on SIGPIPE, silently and
    with 128 + SIGPIPE; stdout goes to /dev/null so the exit's own flush cannot fail again."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_PIPE_CLOSED


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from emulator.state import StateLockedError
    from emulator.template import TemplateError

    try:
        try:
            code = int(args.func(args))
            sys.stdout.flush()  # a closed pipe is found here when the output fitted the buffer
            return code
        except BrokenPipeError:
            return _reader_gone()
    except (StateLockedError, TemplateError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as exc:  # NoRuleMatched, RuntimeConfigError, a moto seam mismatch
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
