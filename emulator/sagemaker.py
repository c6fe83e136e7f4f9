"""Local SageMaker: training, batch-transform and processing jobs as subprocesses on this machine.

Each job honours the container contract of docs/architecture.md: its inputs are staged from the
(moto) bucket into a re-rooted `/opt/ml` before the process starts, its outputs are uploaded after
it ends (SageMaker's File mode; in-process moto is invisible to a subprocess anyway), and the
process receives no AWS credentials. The Describe* documents this module returns are the ones the
Step Functions `.sync` integrations hand back on AWS.

No moto import here: the interpreter seam (`emulator.interpreter`) adapts this class to the ASL.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import ClientError

from emulator import iam
from emulator.archives import UnsafeArchiveError, extract_archive
from emulator.faults import Faults
from emulator.objects import get_file, put_file

JOB_NAME_PATTERN = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
OPT_ML = "/opt/ml"
SERVING_HOST = Path(__file__).with_name("serving.py")
LogSink = Callable[[str, str], None]  # (job name, line)


class SageMakerApiError(Exception):
    """An error the SageMaker API itself returns (the call fails before any job runs)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def split_s3(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/?(.*)$", uri or "")
    if not match:
        raise SageMakerApiError("ValidationException", f"Invalid S3 URI: {uri!r}")
    return match.group(1), match.group(2)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _decode_hyperparameter(value: str) -> Any:
    """The training toolkit JSON-decodes each value when it can (`'"train.py"'` -> `train.py`)."""
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return value


def _arg_value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass
class Job:
    """One job's process and bookkeeping. Terminal once `describe` is set."""

    kind: str  # TrainingJob | TransformJob | ProcessingJob
    name: str
    arn: str
    request: dict[str, Any]
    root: Path
    created_ms: int = field(default_factory=_now_ms)
    started: float = field(default_factory=time.monotonic)  # process start (staging excluded)
    proc: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    log_path: Path | None = None
    max_runtime: float | None = None
    stop_reason: str | None = None
    forced_failure: str | None = None
    finished: float | None = None
    describe: dict[str, Any] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def kill(self, reason: str | None = None) -> None:
        """Stop the process (TimeoutSeconds, StopExecution, MaxRuntimeInSeconds)."""
        if self.proc is not None and self.proc.poll() is None:
            if reason and self.stop_reason is None:
                self.stop_reason = reason
            with contextlib.suppress(ProcessLookupError):  # the group: joblib workers die with the job
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    @property
    def seconds(self) -> float:
        return (self.finished or time.monotonic()) - self.started


class LocalSageMaker:
    """The SageMaker API subset the workflow calls, backed by local processes."""

    def __init__(
        self,
        work_dir: Path,
        *,
        region: str = "us-east-1",
        account: str = "123456789012",
        faults: Faults | None = None,
        log_sink: LogSink | None = None,
        roles: iam.RoleSource | None = None,
    ):
        self.work_dir = Path(work_dir)
        self.roles = roles  # a job reads and writes S3 as its RoleArn (None: unchecked, unit tests)
        self.region = region
        self.account = account
        self.faults = faults or Faults()
        self.log_sink = log_sink
        self.jobs: dict[str, Job] = {}  # ARN -> job (this process)
        self.used_names: dict[str, set[str]] = {
            "TrainingJob": set(),
            "TransformJob": set(),
            "ProcessingJob": set(),
        }
        self.models: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._client: Any = None

    # ---- persistence -------------------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Job names and models survive a restart: a name reused in a later run still collides."""
        with self._lock:
            return {"used_names": {k: sorted(v) for k, v in self.used_names.items()}, "models": self.models}

    def import_state(self, state: dict[str, Any]) -> None:
        with self._lock:
            for kind, names in (state.get("used_names") or {}).items():
                self.used_names.setdefault(kind, set()).update(names)
            self.models.update(state.get("models") or {})

    # ---- S3 -------------------------------------------------------------------------------------
    @property
    def _s3(self) -> Any:
        # one client for every job (clients are thread-safe; creating one costs tens of ms)
        if self._client is None:
            self._client = boto3.client("s3", region_name=self.region)
        return self._client

    def _download(self, uri: str, dest: Path) -> list[Path]:
        """Stage an S3 prefix (or one object) into dest, keeping the relative layout."""
        bucket, prefix = split_s3(uri)
        s3 = self._s3
        dest.mkdir(parents=True, exist_ok=True)
        written = []
        try:
            pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix))
        except ClientError as exc:
            raise _JobInputError(f"ClientError: Data download failed: listing {uri}: {_said(exc)}") from exc
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"]
                if key.endswith("/"):
                    continue
                rel = key[len(prefix) :].lstrip("/") if key != prefix else Path(key).name
                target = dest / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                try:
                    get_file(s3, bucket, key, target)
                except ClientError as exc:
                    raise _JobInputError(
                        f"ClientError: Data download failed: s3://{bucket}/{key}: {_said(exc)}"
                    ) from exc
                written.append(target)
        if not written:
            raise _JobInputError(
                f'ClientError: No S3 objects found under S3 URL "{uri}" given in input data source.'
            )
        return written

    def _upload_dir(self, source: Path, uri: str) -> None:
        bucket, prefix = split_s3(uri)
        for path in sorted(source.rglob("*")):
            if path.is_file():
                key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}".lstrip("/")
                put_file(self._s3, path, bucket, key)

    def arn_of(self, kind: str, name: str) -> str:
        """A SageMaker resource's ARN: the kind in kebab case, the name in lower case (as AWS writes it)."""
        kebab = re.sub(r"(?<!^)(?=[A-Z])", "-", kind).lower()
        return f"arn:aws:sagemaker:{self.region}:{self.account}:{kebab}/{name.lower()}"

    # ---- the job's role ---------------------------------------------------------------------------
    def _role_arn(self, job: Job) -> str | None:
        if job.kind == "TransformJob":  # a transform job runs with its model's execution role
            model = self.models.get(str(job.request.get("ModelName"))) or {}
            return model.get("ExecutionRoleArn")
        return job.request.get("RoleArn")

    def _as_job_role(self, job: Job) -> contextlib.AbstractContextManager[None]:
        if self.roles is None:
            return contextlib.nullcontext()
        return iam.acting_as(self.roles.for_arn(self._role_arn(job)))

    # ---- job bookkeeping ------------------------------------------------------------------------
    def _new_job(self, kind: str, name: Any, request: dict[str, Any]) -> Job:
        if not isinstance(name, str) or not JOB_NAME_PATTERN.match(name):
            raise SageMakerApiError(
                "ValidationException",
                f"1 validation error detected: Value '{name}' at '{kind[0].lower()}{kind[1:]}Name' failed to "
                f"satisfy constraint: Member must satisfy regular expression pattern: "
                f"{JOB_NAME_PATTERN.pattern} and have length less than or equal to 63",
            )
        self.faults.check_api(f"Create{kind}")
        arn = self.arn_of(kind, name)
        with self._lock:
            if name.lower() in {n.lower() for n in self.used_names[kind]}:
                raise SageMakerApiError(
                    "ResourceInUse", f"{kind.replace('Job', ' job')} {name} already exists in this account."
                )
            self.used_names[kind].add(name)
            root = self.work_dir / name
            if root.exists():
                shutil.rmtree(root)
            job = Job(kind=kind, name=name, arn=arn, request=request, root=root)
            self.jobs[arn] = job
        max_runtime = (request.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds")
        job.max_runtime = float(max_runtime) if max_runtime else None
        job.forced_failure = self.faults.take_job_failure(kind)
        return job

    def _start(self, job: Job, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        hang = self.faults.take_job_hang(job.kind)
        if hang is not None:  # fault injection: a process that never finishes in time
            argv = [sys.executable, "-c", f"import time; time.sleep({hang})"]
        elif job.forced_failure is not None:  # fault injection: the program fails at once
            argv = [sys.executable, "-c", "import sys; print('injected failure'); sys.exit(1)"]
        job.log_path = job.root / "job.log"
        job.started = time.monotonic()
        job.proc = subprocess.Popen(
            argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        job.reader = threading.Thread(target=self._pump, args=(job,), name=f"log-{job.name}", daemon=True)
        job.reader.start()

    def _pump(self, job: Job) -> None:
        """Copy the job's output to its log file and the progress printer, line by line."""
        assert job.proc is not None and job.proc.stdout is not None and job.log_path is not None
        with open(job.log_path, "wb") as log:
            for raw in iter(job.proc.stdout.readline, b""):
                log.write(raw)
                log.flush()
                if self.log_sink is not None:
                    self.log_sink(job.name, raw.decode("utf-8", "replace").rstrip("\n"))

    @staticmethod
    def _base_env() -> dict[str, str]:
        # no AWS credentials or endpoints: the job sees only its staged files (File mode contract)
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_", "SM_", "SAGEMAKER_"))
        }
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env

    def _extract_source(self, submit_directory: str, dest: Path) -> None:
        bucket, key = split_s3(submit_directory)
        archive = dest.parent / "sourcedir.tar.gz"
        dest.mkdir(parents=True, exist_ok=True)
        try:
            get_file(self._s3, bucket, key, archive)
        except Exception as exc:
            raise _JobInputError(
                f"ClientError: cannot download the source directory {submit_directory}: {exc}"
            ) from exc
        try:
            extract_archive(dest, path=archive)
        except UnsafeArchiveError as exc:
            raise _JobInputError(f"ClientError: source directory {submit_directory}: {exc}") from exc

    # ---- CreateTrainingJob ----------------------------------------------------------------------
    def create_training_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._new_job("TrainingJob", request.get("TrainingJobName"), request)
        try:
            with self._as_job_role(job):
                self._launch_training(job)
        except _JobInputError as exc:
            self._fail_now(job, str(exc))
        return {"TrainingJobArn": job.arn}

    def _launch_training(self, job: Job) -> None:
        """Stage the code and channels into the job's /opt/ml, then start the program with the
        script-mode environment and the hyperparameters as `--name value` arguments."""
        ml = job.root / "opt/ml"
        raw_hps = {k: str(v) for k, v in (job.request.get("HyperParameters") or {}).items()}
        hps = {k: _decode_hyperparameter(v) for k, v in raw_hps.items()}
        user_hps = {k: v for k, v in hps.items() if not k.startswith("sagemaker_")}
        program = hps.get("sagemaker_program")
        submit_dir = hps.get("sagemaker_submit_directory")
        if not program or not submit_dir:
            raise _JobInputError("ClientError: sagemaker_program and sagemaker_submit_directory are required")
        code = ml / "code"
        self._extract_source(str(submit_dir), code)
        if not (code / str(program)).is_file():
            raise _JobInputError(f"ClientError: program {program} not found in {submit_dir}")
        channels = self._stage_channels(job, ml)
        self._write_input_config(job, ml, raw_hps)
        env = self._training_environment(job, ml, str(program), str(submit_dir), channels, user_hps)
        args = [a for k in sorted(user_hps) for a in (f"--{k}", _arg_value(user_hps[k]))]
        self._start(job, [sys.executable, str(program), *args], env, cwd=code)

    def _stage_channels(self, job: Job, ml: Path) -> list[str]:
        """Each InputDataConfig channel downloaded to /opt/ml/input/data/<name> (File mode)."""
        channels = []
        for channel in job.request.get("InputDataConfig") or []:
            name = channel["ChannelName"]
            self._download(channel["DataSource"]["S3DataSource"]["S3Uri"], ml / "input/data" / name)
            channels.append(name)
        for sub in ("model", "output/data", "input/config"):
            (ml / sub).mkdir(parents=True, exist_ok=True)
        return channels

    @staticmethod
    def _write_input_config(job: Job, ml: Path, raw_hps: dict[str, str]) -> None:
        """/opt/ml/input/config: hyperparameters, channel descriptions, one host."""
        config = ml / "input/config"
        (config / "hyperparameters.json").write_text(json.dumps(raw_hps))
        channels = job.request.get("InputDataConfig") or []
        described = {c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"} for c in channels}
        (config / "inputdataconfig.json").write_text(json.dumps(described))
        (config / "resourceconfig.json").write_text(
            json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]})
        )

    def _training_environment(
        self, job: Job, ml: Path, program: str, submit_dir: str, channels: list[str], user_hps: dict[str, Any]
    ) -> dict[str, str]:
        """The SM_* variables the training toolkit sets for a script-mode program, over the job's own
        `Environment` (the request's map, which SageMaker sets in the container: MODEL_NAME here)."""
        return {
            **self._base_env(),
            **{str(k): str(v) for k, v in (job.request.get("Environment") or {}).items()},
            "SM_MODEL_DIR": str(ml / "model"),
            "SM_OUTPUT_DIR": str(ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(ml / "output/data"),
            "SM_INPUT_DIR": str(ml / "input"),
            "SM_INPUT_CONFIG_DIR": str(ml / "input/config"),
            "SM_INPUT_DATA_DIR": str(ml / "input/data"),
            "SM_MODULE_DIR": submit_dir,
            "SM_MODULE_NAME": program.removesuffix(".py"),
            "SM_USER_ENTRY_POINT": program,
            "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(user_hps),
            "SM_USER_ARGS": json.dumps(
                [a for k in sorted(user_hps) for a in (f"--{k}", _arg_value(user_hps[k]))]
            ),
            "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_CURRENT_HOST": "algo-1",
            "SM_NUM_GPUS": "0",
            "SM_NUM_CPUS": str(os.cpu_count() or 1),
            "SM_LOG_LEVEL": "20",
            "SM_FRAMEWORK_MODULE": "sagemaker_sklearn_container.training:main",
            "SM_TRAINING_ENV": json.dumps(
                {
                    "job_name": job.name,
                    "hyperparameters": user_hps,
                    "channel_input_dirs": {c: str(ml / "input/data" / c) for c in channels},
                }
            ),
            "TRAINING_JOB_NAME": job.name,
            "TRAINING_JOB_ARN": job.arn,
            **{f"SM_CHANNEL_{c.upper()}": str(ml / "input/data" / c) for c in channels},
            **{f"SM_HP_{k.upper()}": _arg_value(v) for k, v in user_hps.items()},
        }

    def _finish_training(self, job: Job, rc: int) -> dict[str, Any]:
        request = job.request
        ml = job.root / "opt/ml"
        log = job.log_path.read_text(errors="replace") if job.log_path and job.log_path.exists() else ""
        metrics = []
        for definition in (request.get("AlgorithmSpecification") or {}).get("MetricDefinitions") or []:
            found = re.findall(definition["Regex"], log)
            if found:
                last = found[-1][0] if isinstance(found[-1], tuple) else found[-1]
                with contextlib.suppress(ValueError):  # SageMaker skips values that are not numbers
                    metrics.append(
                        {"MetricName": definition["Name"], "Value": float(last), "Timestamp": _now_ms()}
                    )
        describe: dict[str, Any] = {
            "TrainingJobName": job.name,
            "TrainingJobArn": job.arn,
            "AlgorithmSpecification": request.get("AlgorithmSpecification", {}),
            "HyperParameters": request.get("HyperParameters", {}),
            "InputDataConfig": request.get("InputDataConfig", []),
            "OutputDataConfig": request.get("OutputDataConfig", {}),
            "ResourceConfig": request.get("ResourceConfig", {}),
            "StoppingCondition": request.get("StoppingCondition", {}),
            "RoleArn": request.get("RoleArn"),
            "CreationTime": job.created_ms,
            "TrainingStartTime": job.created_ms,
            "TrainingEndTime": _now_ms(),
            "LastModifiedTime": _now_ms(),
            "TrainingTimeInSeconds": int(job.seconds),
            "BillableTimeInSeconds": int(job.seconds),
            "FinalMetricDataList": metrics,
            "Tags": request.get("Tags", []),
        }
        output_path = (request.get("OutputDataConfig") or {}).get("S3OutputPath", "")
        bucket, prefix = split_s3(output_path)
        base = f"{prefix.rstrip('/')}/{job.name}/output".lstrip("/")
        if rc == 0 and job.stop_reason is None:
            model_tar = job.root / "model.tar.gz"
            _tar_dir(ml / "model", model_tar)
            put_file(self._s3, model_tar, bucket, f"{base}/model.tar.gz")
            if any((ml / "output/data").iterdir()):
                output_tar = job.root / "output.tar.gz"
                _tar_dir(ml / "output/data", output_tar)
                put_file(self._s3, output_tar, bucket, f"{base}/output.tar.gz")
            describe.update(
                TrainingJobStatus="Completed",
                SecondaryStatus="Completed",
                ModelArtifacts={"S3ModelArtifacts": f"s3://{bucket}/{base}/model.tar.gz"},
            )
        elif job.stop_reason is not None:
            describe.update(
                TrainingJobStatus="Stopped",
                SecondaryStatus="MaxRuntimeExceeded",
                FailureReason=job.stop_reason,
            )
        else:
            describe.update(
                TrainingJobStatus="Failed",
                SecondaryStatus="Failed",
                FailureReason=_failure_reason(ml / "output/failure", rc, log),
            )
        return describe

    # ---- CreateModel ------------------------------------------------------------------------------
    def create_model(self, request: dict[str, Any]) -> dict[str, Any]:
        self.faults.check_api("CreateModel")
        name = request.get("ModelName")
        if not isinstance(name, str) or not JOB_NAME_PATTERN.match(name):
            raise SageMakerApiError("ValidationException", f"Invalid ModelName {name!r}")
        container = request.get("PrimaryContainer") or (request.get("Containers") or [None])[0]
        if not container or not container.get("ModelDataUrl"):
            raise SageMakerApiError("ValidationException", "PrimaryContainer.ModelDataUrl is required")
        arn = f"arn:aws:sagemaker:{self.region}:{self.account}:model/{name.lower()}"
        with self._lock:
            if name in self.models:
                raise SageMakerApiError(
                    "ValidationException", f'Cannot create already existing model "{arn}".'
                )
            self.models[name] = {**request, "ModelArn": arn, "CreationTime": _now_ms()}
        return {"ModelArn": arn}

    # ---- CreateTransformJob ------------------------------------------------------------------------
    def create_transform_job(self, request: dict[str, Any]) -> dict[str, Any]:
        model = self.models.get(str(request.get("ModelName")))
        if model is None:
            raise SageMakerApiError(
                "ValidationException", f'Could not find model "{request.get("ModelName")}".'
            )
        job = self._new_job("TransformJob", request.get("TransformJobName"), request)
        try:
            with self._as_job_role(job):
                self._launch_transform(job, model)
        except _JobInputError as exc:
            self._fail_now(job, str(exc))
        return {"TransformJobArn": job.arn}

    def _launch_transform(self, job: Job, model: dict[str, Any]) -> None:
        request = job.request
        container = model.get("PrimaryContainer") or model["Containers"][0]
        environment = {str(k): str(v) for k, v in (container.get("Environment") or {}).items()}
        program = environment.get("SAGEMAKER_PROGRAM")
        submit_dir = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
        if not program or not submit_dir:
            raise _JobInputError(
                "ClientError: the model's SAGEMAKER_PROGRAM and SAGEMAKER_SUBMIT_DIRECTORY are required"
            )
        model_dir, code, inputs, outputs = (job.root / p for p in ("opt/ml/model", "code", "input", "output"))
        archive = job.root / "model.tar.gz"
        model_dir.mkdir(parents=True, exist_ok=True)
        bucket, key = split_s3(container["ModelDataUrl"])
        try:
            get_file(self._s3, bucket, key, archive)
        except Exception as exc:
            raise _JobInputError(
                f"ClientError: cannot download model data {container['ModelDataUrl']}: {exc}"
            ) from exc
        try:
            extract_archive(model_dir, path=archive)
        except UnsafeArchiveError as exc:
            raise _JobInputError(f"ClientError: model data {container['ModelDataUrl']}: {exc}") from exc
        self._extract_source(submit_dir, code)
        transform_input = request.get("TransformInput") or {}
        files = self._download(transform_input["DataSource"]["S3DataSource"]["S3Uri"], inputs)
        outputs.mkdir(parents=True, exist_ok=True)
        config = {
            "code_dir": str(code),
            "program": program,
            "model_dir": str(model_dir),
            "inputs": [str(p) for p in files],
            "input_root": str(inputs),
            "output_root": str(outputs),
            "content_type": transform_input.get("ContentType", "application/octet-stream"),
            "split_type": transform_input.get("SplitType", "None"),
            "compression": transform_input.get("CompressionType", "None"),
            "accept": (request.get("TransformOutput") or {}).get("Accept"),
            "assemble_with": (request.get("TransformOutput") or {}).get("AssembleWith", "None"),
            "batch_strategy": request.get("BatchStrategy", "MultiRecord"),
            "max_payload_mb": float(request.get("MaxPayloadInMB", 6)),
            # One serving process per instance, the files spread over them (serving.assign_files).
            "instance_count": int((request.get("TransformResources") or {}).get("InstanceCount", 1)),
        }
        config_path = job.root / "serving.json"
        config_path.write_text(json.dumps(config))
        # The container sees the model's Environment and, over it, the transform job's own.
        job_environment = {str(k): str(v) for k, v in (request.get("Environment") or {}).items()}
        env = {**self._base_env(), **environment, **job_environment, "SM_MODEL_DIR": str(model_dir)}
        self._start(job, [sys.executable, str(SERVING_HOST), str(config_path)], env, cwd=code)

    def _finish_transform(self, job: Job, rc: int) -> dict[str, Any]:
        request = job.request
        describe: dict[str, Any] = {
            "TransformJobName": job.name,
            "TransformJobArn": job.arn,
            "ModelName": request.get("ModelName"),
            "MaxPayloadInMB": request.get("MaxPayloadInMB"),
            "BatchStrategy": request.get("BatchStrategy"),
            "TransformInput": request.get("TransformInput", {}),
            "TransformOutput": request.get("TransformOutput", {}),
            "TransformResources": request.get("TransformResources", {}),
            "Environment": request.get("Environment", {}),
            "CreationTime": job.created_ms,
            "TransformStartTime": job.created_ms,
            "TransformEndTime": _now_ms(),
        }
        if rc == 0 and job.stop_reason is None:
            self._upload_dir(job.root / "output", request["TransformOutput"]["S3OutputPath"])
            describe["TransformJobStatus"] = "Completed"
        else:
            log = job.log_path.read_text(errors="replace") if job.log_path and job.log_path.exists() else ""
            reason = job.stop_reason or _failure_reason(job.root / "failure", rc, log, prefix="ClientError")
            describe.update(
                TransformJobStatus="Stopped" if job.stop_reason else "Failed", FailureReason=reason
            )
        return describe

    # ---- CreateProcessingJob -----------------------------------------------------------------------
    def create_processing_job(self, request: dict[str, Any]) -> dict[str, Any]:
        job = self._new_job("ProcessingJob", request.get("ProcessingJobName"), request)
        try:
            with self._as_job_role(job):
                self._launch_processing(job)
        except _JobInputError as exc:
            self._fail_now(job, str(exc))
        return {"ProcessingJobArn": job.arn}

    def _reroot(self, job: Job, path: str) -> str:
        return str(job.root / path.lstrip("/")) if path.startswith(OPT_ML) else path

    def _launch_processing(self, job: Job) -> None:
        request = job.request
        app = request.get("AppSpecification") or {}
        for item in request.get("ProcessingInputs") or []:
            source = item.get("S3Input") or {}
            self._download(source["S3Uri"], Path(self._reroot(job, source["LocalPath"])))
        for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
            Path(self._reroot(job, item["S3Output"]["LocalPath"])).mkdir(parents=True, exist_ok=True)
        (job.root / "opt/ml/output").mkdir(parents=True, exist_ok=True)
        entrypoint = list(app.get("ContainerEntrypoint") or [])
        if not entrypoint:
            raise _JobInputError("ClientError: AppSpecification.ContainerEntrypoint is required locally")
        if Path(entrypoint[0]).name in ("python", "python3", "python3.9"):
            entrypoint[0] = sys.executable  # the image's interpreter is this machine's
        argv = [self._reroot(job, a) for a in entrypoint + list(app.get("ContainerArguments") or [])]
        env = {**self._base_env(), **{str(k): str(v) for k, v in (request.get("Environment") or {}).items()}}
        self._start(job, argv, env, cwd=job.root)

    def _finish_processing(self, job: Job, rc: int) -> dict[str, Any]:
        request = job.request
        describe: dict[str, Any] = {
            "ProcessingJobName": job.name,
            "ProcessingJobArn": job.arn,
            "ProcessingInputs": request.get("ProcessingInputs", []),
            "ProcessingOutputConfig": request.get("ProcessingOutputConfig", {}),
            "ProcessingResources": request.get("ProcessingResources", {}),
            "StoppingCondition": request.get("StoppingCondition", {}),
            "AppSpecification": request.get("AppSpecification", {}),
            "Environment": request.get("Environment", {}),
            "RoleArn": request.get("RoleArn"),
            "CreationTime": job.created_ms,
            "ProcessingStartTime": job.created_ms,
            "ProcessingEndTime": _now_ms(),
            "LastModifiedTime": _now_ms(),
        }
        if rc == 0 and job.stop_reason is None:
            for item in (request.get("ProcessingOutputConfig") or {}).get("Outputs") or []:
                output = item["S3Output"]
                self._upload_dir(Path(self._reroot(job, output["LocalPath"])), output["S3Uri"])
            describe["ProcessingJobStatus"] = "Completed"
        else:
            log = job.log_path.read_text(errors="replace") if job.log_path and job.log_path.exists() else ""
            reason = job.stop_reason or _failure_reason(job.root / "opt/ml/output/failure", rc, log)
            describe.update(
                ProcessingJobStatus="Stopped" if job.stop_reason else "Failed", FailureReason=reason
            )
        return describe

    # ---- Describe* (what .sync polls) --------------------------------------------------------------
    def _fail_now(self, job: Job, reason: str) -> None:
        status_key = f"{job.kind}Status"
        job.finished = time.monotonic()
        job.describe = {
            f"{job.kind}Name": job.name,
            f"{job.kind}Arn": job.arn,
            status_key: "Failed",
            "FailureReason": reason,
            "CreationTime": job.created_ms,
        }

    def wait(self, arn: str, timeout: float) -> dict[str, Any] | None:
        """The terminal Describe* document, or None if the job is still running after `timeout`."""
        job = self.jobs[arn]
        with job.lock:
            if job.describe is not None:
                return job.describe
            assert job.proc is not None
            deadline = timeout
            if job.max_runtime is not None:
                deadline = max(0.0, min(timeout, job.max_runtime - job.seconds))
            try:
                rc = job.proc.wait(timeout=deadline)
            except subprocess.TimeoutExpired:
                if job.max_runtime is not None and job.seconds >= job.max_runtime:
                    job.kill(f"MaxRuntimeExceeded: Job exceeded MaxRuntimeInSeconds ({job.max_runtime:g} s)")
                    rc = job.proc.returncode
                else:
                    return None
            if job.reader is not None:
                job.reader.join()  # the log is complete before metrics are read from it
            job.finished = time.monotonic()
            if job.forced_failure is not None and job.stop_reason is None:
                rc = rc or 1
                reason_path = {
                    "TrainingJob": "opt/ml/output/failure",
                    "TransformJob": "failure",
                    "ProcessingJob": "opt/ml/output/failure",
                }[job.kind]
                (job.root / reason_path).parent.mkdir(parents=True, exist_ok=True)
                (job.root / reason_path).write_text(job.forced_failure)
            finish = {
                "TrainingJob": self._finish_training,
                "TransformJob": self._finish_transform,
                "ProcessingJob": self._finish_processing,
            }[job.kind]
            try:
                with self._as_job_role(job):
                    job.describe = finish(job, rc)
            except ClientError as exc:  # the outputs could not be uploaded (e.g. the role may not write)
                self._fail_now(job, f"ClientError: Failed to upload the job's output: {_said(exc)}")
                job.finished = time.monotonic()
            assert job.describe is not None
            return job.describe

    def stop(self, arn: str, reason: str) -> None:
        job = self.jobs.get(arn)
        if job is not None:
            job.kill(reason)

    def kill_all(self) -> None:
        for job in list(self.jobs.values()):
            job.kill("Stopped: the local runtime shut down")

    def job_seconds(self) -> dict[str, float]:
        """Wall time of every job this process ran (for the overhead figure)."""
        return {job.name: job.seconds for job in self.jobs.values() if job.finished is not None}


class _JobInputError(Exception):
    """The job cannot start (missing input or code): it fails with this reason, as on SageMaker."""


def _said(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code')}: {error.get('Message')}"


def _tar_dir(source: Path, archive: Path) -> None:
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(source.iterdir()):
            tar.add(path, arcname=path.name)


def _failure_reason(path: Path, rc: int, log: str, prefix: str = "AlgorithmError") -> str:
    """SageMaker reports the failure file (1 KiB at most), else a generic reason with the log's tail."""
    if path.exists() and path.read_text(errors="replace").strip():
        text = path.read_text(errors="replace").strip()
        if text.startswith(("ClientError: ", "AlgorithmError: ")):  # already classified (serving host)
            return text[:1024]
        return f"{prefix}: {text}"[:1024]
    tail = "\n".join(log.strip().splitlines()[-5:])
    return f"{prefix}: See job logs for more information (exit code {rc}). {tail}"[:1024]
