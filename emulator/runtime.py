"""The local runtime: the template's stack on moto, the ASL on moto's interpreter, jobs as processes.

    with LocalRuntime(state_dir=Path(".local")) as runtime:
        record = runtime.run_upload(Path("data/diabetic_data.csv.gz"))   # the S3 trigger
        record = runtime.run({"datasetUri": "s3://.../datasets/x.csv"})   # the console/API input

One runtime per process at a time (moto's backends and the interpreter seam are process-wide);
one process per state directory at a time (a file lock).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import boto3

from emulator import atomic, enforcement, iam, interpreter
from emulator import s3 as local_s3
from emulator.api import ApiGateway
from emulator.endpoint import CloudWatchLogs, JobRecords
from emulator.faults import Faults
from emulator.lambdas import apply_environment
from emulator.objects import put_file
from emulator.progress import Progress, state_timings
from emulator.registry_view import table_request
from emulator.sagemaker import LocalSageMaker
from emulator.state import DEFAULT_STATE_DIR, PROJECT_ROOT, StateDir
from emulator.template import ACCOUNT_ID, REGION, LocalStack, load_stack
from emulator.triggers import EventBridgeTrigger, NoRuleMatched

DEFAULT_DATASETS_PREFIX = "datasets/"
DEFAULT_SCORING_PREFIX = "scoring/"
CODE_PREFIX = "code/"
TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
STATUS_SECONDS = 0.1  # how often a waiter polls an execution whose thread it cannot join
PROGRESS_SECONDS = 0.5  # how often the progress printer reads the history (when it has grown)
STALE_SECONDS = 5.0  # how often a waiter reads the status of a running execution whose history is still


class RuntimeConfigError(ValueError):
    """The runtime was asked for something the template does not define."""


def _quiet_moto() -> None:
    # the interpreter logs every caught task error at ERROR level; the progress printer shows them
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)
    for name in ("moto", "botocore.credentials"):
        logging.getLogger(name).setLevel(logging.ERROR)
    # Powertools warns on every invocation that publishes no metric: noise locally, not a defect
    warnings.filterwarnings("ignore", message="No application metrics to publish")


def _both(
    first: Callable[[str, str], None], second: Callable[[str, str], None]
) -> Callable[[str, str], None]:
    """One log sink that feeds two (the progress printer, CloudWatch Logs)."""

    def sink(name: str, line: str) -> None:
        first(name, line)
        second(name, line)

    return sink


def content_hash(folder: Path) -> str:
    """Hash of every source file under folder (what decides whether the bundle is rebuilt)."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc",):
            digest.update(path.relative_to(folder).as_posix().encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


class LocalRuntime:
    """See the module docstring. All AWS calls inside go to moto."""

    def __init__(
        self,
        root: Path = PROJECT_ROOT,
        state_dir: Path | None = None,
        *,
        parameters: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        progress: Progress | None = None,
        lock_wait_seconds: float = 0.0,
        strict_parameters: bool = True,
        retry_wait_scale: float = 1.0,
    ):
        self.root = Path(root).resolve()
        self.state = StateDir(Path(state_dir) if state_dir else DEFAULT_STATE_DIR, lock_wait_seconds)
        self.parameters = dict(parameters or {})
        self.strict_parameters = strict_parameters
        # Retry back-off in the ASL is AWS's (30 s, 120 s); tests run it faster (0: no wait)
        self.retry_wait_scale = float(retry_wait_scale)
        self.environment_overrides = dict(environment or {})
        self.progress = progress or Progress()
        if self.progress.trace_dir is None:  # handlers' tracebacks go to a file, not the terminal
            self.progress.trace_dir = self.state.root / "logs"
        self.faults = Faults()
        self.stack: LocalStack
        self.sagemaker: LocalSageMaker
        self.api: ApiGateway
        self._mock: Any = None
        self._recorded: set[str] = set()
        self._save_lock = threading.RLock()  # the API's watcher thread saves too
        self.startup_seconds = 0.0
        self._opened = False  # set when start-up completed: only then is there state to save

    # ---- lifecycle -----------------------------------------------------------------------------------
    def __enter__(self) -> LocalRuntime:
        started = time.monotonic()
        self.state.__enter__()
        try:
            self._open()
        except BaseException:
            self._close()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def __exit__(self, *_: Any) -> None:
        self._close()

    def _open(self) -> None:
        # the bundle builds in its own process on the other core while this one sets up moto
        bundle = self._start_bundle_build()
        try:
            self._open_stack(bundle)
        finally:
            if bundle[1] is not None and bundle[1].poll() is None:  # start-up failed before the wait
                bundle[1].kill()
                bundle[1].wait()

    def _open_stack(self, bundle: tuple[Path, subprocess.Popen[str] | None]) -> None:
        from moto import mock_aws

        self.stack = load_stack(self.root, self.parameters, strict_parameters=self.strict_parameters)
        self.roles = iam.PendingRoles(self.root, self.stack.parameters, self.state.root / "iam")
        self._saved_environ = dict(os.environ)  # restored at close: the functions' settings are ours only
        os.environ["AWS_DEFAULT_REGION"] = REGION
        # a shell that exported AWS_ENDPOINT_URL (or a profile with endpoint_url) for the local endpoint
        # must not send the runtime's own clients, in-process on moto, there
        os.environ["AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"] = "true"
        _quiet_moto()
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._mock.start()
        local_s3.install()
        self._s3_installed = True
        # every call the functions, the state machine and the jobs make is checked against their roles
        enforcement.install()
        self._enforcing = True
        # the executions' handlers share moto's DynamoDB backend from several threads
        atomic.install()
        self._atomic = True
        environment = apply_environment(self.stack)
        self._environment = environment
        unknown = sorted(set(self.environment_overrides) - set(environment))
        if unknown:
            raise RuntimeConfigError(
                f"environment override(s) not defined for any function: {', '.join(unknown)}"
            )
        os.environ.update(self.environment_overrides)
        self._create_resources()
        self.state.reset_jobs_dir()
        # the jobs' and handlers' lines, also as CloudWatch Logs events (the AWS endpoint serves them)
        self.cloudwatch = CloudWatchLogs(self)
        self.sagemaker = LocalSageMaker(
            self.state.jobs_dir,
            region=REGION,
            account=ACCOUNT_ID,
            faults=self.faults,
            log_sink=_both(self.progress.job_line, self.cloudwatch.job_line),
            roles=self.roles,
        )
        self.sagemaker.import_state(self.state.read_json("sagemaker.json", {}))
        self.jobs = JobRecords(self)
        from emulator.lambdas import LocalLambda

        # the handlers' stdout: <state-dir>/logs/lambda/<function>.log (CloudWatch Logs' /aws/lambda/...)
        self.progress.lambda_log_dir = self.state.root / "logs" / "lambda"
        self.lambdas = LocalLambda(
            self.stack,
            self.faults,
            log=self.progress.handler_note,
            roles=self.roles,
            log_dir=self.progress.lambda_log_dir,
            log_line=_both(self.progress.handler_line, self.cloudwatch.handler_line),
        )
        interpreter.install(
            self, self.sagemaker, self.lambdas, self.roles, self.retry_wait_scale, faults=self.faults
        )
        interpreter.clear_threads()
        self.sfn = boto3.client("stepfunctions", region_name=REGION)
        machine = self.stack.state_machine
        arn = self.sfn.create_state_machine(
            name=machine.name,
            definition=json.dumps(machine.definition),
            roleArn=f"arn:aws:iam::{ACCOUNT_ID}:role/{machine.name}-role",
        )["stateMachineArn"]
        if arn != machine.arn:
            raise RuntimeConfigError(f"state machine ARN {arn} differs from the template's {machine.arn}")
        self.state_machine_arn = arn
        restored = self.state.load_bucket(self.stack.bucket)
        self.state.load_table(self.stack.table.name)
        records = list(self.state.executions())
        self._recorded = {r["name"] for r in records}
        interpreter.restore_executions(records, arn)
        if restored:
            self.progress.note(f"state restored from {self.state.root} ({restored} objects)")
        self._upload_bundle(*bundle)
        # installed last: restoring objects must not look like uploads
        self.trigger = EventBridgeTrigger(self.stack.bucket, self.stack.state_machine.rules)
        self.trigger.install()
        self.api = ApiGateway(self.stack, self.lambdas)
        self._opened = True

    def _close(self) -> None:
        try:
            if self._mock is not None:
                if hasattr(self, "sagemaker"):
                    self.sagemaker.kill_all()
                if self._opened:  # a start-up that failed half-way (e.g. a partial restore) saves nothing
                    self.save()
        finally:
            if hasattr(self, "lambdas"):
                self.lambdas.close()
            if hasattr(self, "roles"):
                self.roles.close()
            if hasattr(self, "cloudwatch"):
                self.cloudwatch.close()
            interpreter.uninstall(self)
            if getattr(self, "_enforcing", False):
                enforcement.uninstall()
                self._enforcing = False
            if getattr(self, "_atomic", False):
                atomic.uninstall()
                self._atomic = False
            if getattr(self, "_s3_installed", False):
                local_s3.uninstall()
                self._s3_installed = False
            if self._mock is not None:
                self._mock.stop()
                self._mock = None
            interpreter.clear_threads()
            if hasattr(self, "_saved_environ"):
                os.environ.clear()
                os.environ.update(self._saved_environ)
            self.state.__exit__()

    def _create_resources(self) -> None:
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=self.stack.bucket)
        if self.stack.bucket_versioning:  # event and HeadObject carry version ids, as on AWS
            s3.put_bucket_versioning(Bucket=self.stack.bucket, VersioningConfiguration={"Status": "Enabled"})
        boto3.client("dynamodb", region_name=REGION).create_table(**table_request(self.stack.table))
        sns = boto3.client("sns", region_name=REGION)
        sqs = boto3.client("sqs", region_name=REGION)
        self.notification_queues: dict[str, str] = {}  # topic ARN -> the queue that reads it
        for arn in self.stack.topics.values():
            sns.create_topic(Name=arn.rsplit(":", 1)[1])
            # what the topic published, readable by any SQS client (`aws sqs receive-message`): the
            # local stand-in for the e-mail subscription (SNS's JSON envelope, as SQS receives it on AWS)
            url = sqs.create_queue(QueueName=f"{arn.rsplit(':', 1)[1]}-inbox")["QueueUrl"]
            queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            sns.subscribe(TopicArn=arn, Protocol="sqs", Endpoint=queue_arn)
            self.notification_queues[arn] = url

    def _start_bundle_build(self) -> tuple[Path, subprocess.Popen[str] | None]:
        """Start `python -m pipelines.bundle` unless this content of pipelines/ is built already.

        Returns the bundle's folder and the build process (None when cached)."""
        pipelines = self.root / "pipelines"
        if not pipelines.is_dir():
            raise RuntimeConfigError(f"{pipelines} is missing: the code bundle cannot be built")
        out = self.state.bundle_dir / content_hash(pipelines)
        if (out / "sourcedir.tar.gz").exists():
            return out, None
        tmp = out.with_name(out.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        build = subprocess.Popen(
            [sys.executable, "-m", "pipelines.bundle", "--out", str(tmp)],
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        return out, build

    def _upload_bundle(self, out: Path, build: subprocess.Popen[str] | None) -> None:
        """Finish the build (if one was started) and upload the bundle to code/."""
        if build is not None:
            _, stderr = build.communicate()
            if build.returncode != 0:
                raise RuntimeConfigError(f"python -m pipelines.bundle failed:\n{stderr.strip()}")
            shutil.rmtree(out, ignore_errors=True)
            out.with_name(out.name + ".tmp").rename(out)
        s3 = boto3.client("s3", region_name=REGION)
        for path in sorted(out.rglob("*")):
            if path.is_file():
                put_file(s3, path, self.stack.bucket, CODE_PREFIX + path.relative_to(out).as_posix())

    def update_environment(self, **variables: str) -> None:
        """Change the functions' environment (e.g. MIN_ROC_AUC="0.99"), as a configuration update
        on AWS would: the next invocation of every function is a cold start that reads it."""
        unknown = sorted(set(variables) - set(self._environment))
        if unknown:
            raise RuntimeConfigError(f"not a function environment variable: {', '.join(unknown)}")
        os.environ.update({k: str(v) for k, v in variables.items()})
        self.lambdas.cold_start()

    # ---- persistence -------------------------------------------------------------------------------------
    def save(self) -> None:
        """Write bucket, registry, SageMaker names and finished executions to the state dir."""
        with self._save_lock:
            self.record_finished()
            self.state.save_bucket(self.stack.bucket)
            self.state.save_table(self.stack.table.name)
            self.state.write_json("sagemaker.json", self.sagemaker.export_state())
            self.jobs.save()

    def is_recorded(self, name: str) -> bool:
        return name in self._recorded

    def record_finished(self) -> list[dict[str, Any]]:
        """Store every execution that ended since the last call (also those the API started)."""
        with self._save_lock:
            return self._record_finished()

    def _record_finished(self) -> list[dict[str, Any]]:
        records = []
        pages = self.sfn.get_paginator("list_executions").paginate(stateMachineArn=self.state_machine_arn)
        for page in pages:
            for item in page["executions"]:
                if item["status"] in TERMINAL and item["name"] not in self._recorded:
                    record = self.describe(item["executionArn"])
                    self.state.save_execution(record)
                    self._recorded.add(item["name"])
                    records.append(record)
        return records

    # ---- executions ----------------------------------------------------------------------------------------
    @property
    def datasets_prefix(self) -> str:
        """Where uploads start a run: the functions' DATASETS_PREFIX (the template's parameter)."""
        return os.environ.get("DATASETS_PREFIX") or DEFAULT_DATASETS_PREFIX

    @property
    def scoring_prefix(self) -> str:
        return os.environ.get("SCORING_PREFIX") or DEFAULT_SCORING_PREFIX

    def s3_uri(self, key: str) -> str:
        return f"s3://{self.stack.bucket}/{key}"

    def put_file(self, path: Path, prefix: str, *, notify: bool = False) -> str:
        """Copy a local file into the bucket under prefix. With notify, pending rule events are kept."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        key = prefix + path.name
        boto3.client("s3", region_name=REGION).upload_file(str(path), self.stack.bucket, key)
        if not notify:
            self.trigger.collect()  # this upload is not a trigger: drop the events it produced
        return self.s3_uri(key)

    def start(self, execution_input: Any, name: str | None = None) -> str:
        """StartExecution, as the console does (a UUID name unless one is given)."""
        return self.sfn.start_execution(
            stateMachineArn=self.state_machine_arn,
            name=name or str(uuid.uuid4()),
            input=json.dumps(execution_input),
        )["executionArn"]

    def start_uploaded(self) -> list[str]:
        """Start an execution for every upload the trigger's rules captured since the last call (an S3
        client's PutObject, multipart upload or copy through the AWS endpoint). Returns their ARNs."""
        return [self.start(execution_input) for execution_input in self.trigger.collect()]

    def describe(self, arn: str) -> dict[str, Any]:
        described = self.sfn.describe_execution(executionArn=arn)
        events: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"executionArn": arn, "maxResults": 1000}
        while True:
            page = self.sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
        record = {
            "name": described["name"],
            "executionArn": arn,
            "status": described["status"],
            "startDate": described["startDate"].isoformat(),
            "stopDate": described["stopDate"].isoformat() if described.get("stopDate") else None,
            "input": json.loads(described.get("input") or "null"),
            "output": json.loads(described["output"]) if described.get("output") else None,
            "error": described.get("error"),
            "cause": described.get("cause"),
            "states": state_timings(events),
            "events": [{**e, "timestamp": e["timestamp"].isoformat()} for e in events],
        }
        return record

    def wait(self, arn: str, timeout: float | None = None) -> dict[str, Any]:
        """Block until the execution ends, streaming its progress; then persist and return the record."""
        deadline = time.monotonic() + timeout if timeout else None
        name = arn.rsplit(":", 1)[1]
        shown = checked = 0.0
        seen = -1  # interpreter.history_version() when the history was last shown
        while True:
            thread = interpreter.execution_thread(arn)
            running = thread is not None and thread.is_alive() and thread is not threading.current_thread()
            version = interpreter.history_version()
            # while its thread runs, an execution whose history has not grown has not changed: the
            # status and the history (costly to serialise: tens of ms on a busy machine, CPU the jobs
            # need) are read when an event was added, when the thread ended, and every STALE_SECONDS
            if not running or version != seen or time.monotonic() - checked >= STALE_SECONDS:
                status = self.sfn.describe_execution(executionArn=arn)["status"]
                checked = time.monotonic()
                # the progress is refreshed when it has grown (a few times a second at most) and at the end
                due = version != seen and time.monotonic() - shown >= PROGRESS_SECONDS
                if status in TERMINAL or due:
                    history = self.sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
                    self.progress.events(name, history)
                    shown, seen = time.monotonic(), version
                if status in TERMINAL:
                    break
            if deadline is not None and time.monotonic() > deadline:
                self.sfn.stop_execution(
                    executionArn=arn, error="Local.Timeout", cause="the caller stopped waiting"
                )
                deadline, seen = None, -1
            if running:
                assert thread is not None
                # event-driven: the join returns the moment the execution ends
                pause = PROGRESS_SECONDS
                if deadline is not None:
                    pause = max(0.0, min(pause, deadline - time.monotonic()))
                thread.join(pause)
            else:  # not started yet, or already ended without a final status: poll
                time.sleep(STATUS_SECONDS)
        self.save()
        interpreter.clear_threads()
        record = self.state.execution(name)
        assert record is not None
        return record

    def run(
        self, execution_input: Any, name: str | None = None, timeout: float | None = None
    ) -> dict[str, Any]:
        return self.wait(self.start(execution_input, name), timeout)

    def run_upload(self, dataset: Path, timeout: float | None = None) -> dict[str, Any]:
        """Upload a dataset under datasets/ and run the execution the S3 trigger starts."""
        dataset = Path(dataset)
        if not dataset.is_file():
            raise FileNotFoundError(f"no such dataset: {dataset}")
        inputs = self.trigger.upload(str(dataset), self.datasets_prefix + dataset.name)
        if not inputs:
            rules = [r.name for r in self.stack.state_machine.rules]
            raise NoRuleMatched(
                f"uploading s3://{self.stack.bucket}/{self.datasets_prefix}{dataset.name} matched none of "
                "the "
                f"state machine's EventBridge rules {rules}: check their Pattern"
            )
        return self.run(inputs[0], timeout=timeout)
