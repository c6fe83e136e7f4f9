"""The end-to-end figures of `scripts/benchmark.py`: `run` on a dataset, start-up included, and the
10x dataset those figures are also measured on.

`end_to_end` runs `python -m emulator run --dataset FILE --json` in a child process on a fresh state
directory (so the bundle build and every import count): the upload path a user takes. It splits the
wall time into the jobs' own process time and the orchestration overhead (everything else: start-up,
staging, the interpreter, the functions), counts the rows of the predictions file and measures memory:

- peak RSS of the whole tree, exact: `os.wait4` on the run's process returns the kernel's
  RUSAGE_BOTH for it, whose `ru_maxrss` is the largest resident size of that process or of any
  descendant it reaped (the job processes, the serving host, the bundle build);
- peak RSS per process, named: a sampler thread reads `/proc/*/stat` twice a second for the run's
  descendants and keeps each one's `VmHWM` (the kernel's own high-water mark, so a sample taken any
  time before the process ends sees its peak so far). A process living less than one interval can be
  missed by the sampler; the wait4 figure cannot miss it.

`scaled_dataset` writes the N-times dataset: the rows repeated N times, copy k with `encounter_id`
and `patient_nbr` shifted by k * ID_STRIDE, so every encounter id stays unique and every copy's
patients are new patients (a patient-grouped split cannot put one patient's copies on both sides).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PRICES = ROOT / "docs" / "aws-prices.json"
BARS = {"wall_seconds": 30.0, "overhead_seconds": 3.0}
# Larger than every encounter_id and patient_nbr of the bundled data (both below 5e8): copy k's ids
# are the original ids plus k * ID_STRIDE, disjoint from every other copy's.
ID_STRIDE = 1_000_000_000
SAMPLE_SECONDS = 0.5
_PAGE_KB = 4


# ---- the N-times dataset ------------------------------------------------------------------------


def scaled_dataset(source: Path, copies: int, out: Path, *, compresslevel: int = 6) -> dict[str, int]:
    """Write `copies` copies of `source`'s rows to the gzip `out` (one header), streamed line by line.

    Copy 0 is the original; copy k adds k * ID_STRIDE to `encounter_id` and `patient_nbr` (found by
    name in the header). The bundled file has no quoted fields, which the split on commas relies
    on: a quote in an id line is refused rather than mis-shifted. Returns the rows and the
    uncompressed bytes written. The file appears under its name only when complete."""
    if copies < 1:
        raise ValueError(f"copies must be >= 1, got {copies}")
    opener = gzip.open if source.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(source, "rt", encoding="utf-8", newline="") as handle:
        header = handle.readline()
        lines = handle.read().splitlines()
    names = header.rstrip("\r\n").split(",")
    id_at, patient_at = names.index("encounter_id"), names.index("patient_nbr")
    last = max(id_at, patient_at)
    parsed = []
    for number, line in enumerate(lines, start=2):
        if not line:
            continue
        parts = line.split(",", last + 1)
        if '"' in ",".join(parts[: last + 1]):
            raise ValueError(f"{source}: line {number} quotes an id field; scaled_dataset splits on commas")
        parsed.append((parts, int(parts[id_at]), int(parts[patient_at])))
    tmp = out.with_name(out.name + ".tmp")
    rows = written = 0
    with gzip.open(tmp, "wb", compresslevel=compresslevel) as target:
        data = header.encode()
        target.write(data)
        written += len(data)
        for copy in range(copies):
            shift = copy * ID_STRIDE
            chunk = []
            for parts, encounter, patient in parsed:
                parts = list(parts)
                parts[id_at] = str(encounter + shift)
                parts[patient_at] = str(patient + shift)
                chunk.append(",".join(parts))
            data = ("\n".join(chunk) + "\n").encode()
            target.write(data)
            written += len(data)
            rows += len(chunk)
    tmp.replace(out)
    return {"rows": rows, "bytes": written}


def cached_scaled_dataset(source: Path, copies: int, cache_dir: Path) -> tuple[Path, bool]:
    """The `copies`-times dataset of `source` in `cache_dir`, generated on the first call only.

    The name carries a hash of the source's content and the copy count, so a changed source makes a
    new file. Returns the path and whether it was generated now."""
    digest = hashlib.sha256(source.read_bytes()).hexdigest()[:12]
    stem = source.name.split(".")[0]
    out = cache_dir / f"{stem}_x{copies}_{digest}.csv.gz"
    if out.exists():
        return out, False
    cache_dir.mkdir(parents=True, exist_ok=True)
    scaled_dataset(source, copies, out)
    return out, True


def default_cache_dir() -> Path:
    """The benchmark's work directory (outside the repository): the 10x file is cached there."""
    return Path(tempfile.gettempdir()) / "readmission-bench"


# ---- memory of a process tree -------------------------------------------------------------------


@dataclass
class TreeSampler:
    """Peak RSS (VmHWM, MB) of every descendant of `root`, sampled from /proc (Linux only)."""

    root: int
    peaks: dict[int, tuple[str, float]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> TreeSampler:
        if Path("/proc/self/status").exists():
            self._thread = threading.Thread(target=self._loop, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(SAMPLE_SECONDS)

    def sample(self) -> None:
        parents: dict[int, int] = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    stat = Path(entry.path, "stat").read_text()
                except OSError:  # ended between the listing and the read
                    continue
                parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
        tree, frontier = {self.root}, [self.root]
        while frontier:
            parent = frontier.pop()
            for pid, ppid in parents.items():
                if ppid == parent and pid not in tree:
                    tree.add(pid)
                    frontier.append(pid)
        for pid in tree:
            peak = _hwm_mb(pid)
            if peak is not None and peak >= self.peaks.get(pid, ("", 0.0))[1]:
                self.peaks[pid] = (self.peaks.get(pid, ("", 0.0))[0] or _describe(pid), peak)


def _hwm_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def _describe(pid: int) -> str:
    """A short name: the module or script the python process runs (`emulator run`, `train.py`)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return str(pid)
    argv = [a for a in argv if a]
    if "-m" in argv:
        at = argv.index("-m")
        return " ".join(argv[at + 1 : at + 3])
    if len(argv) > 1 and argv[1] == "-c":
        return "python -c"
    return Path(argv[1]).name if len(argv) > 1 else Path(argv[0]).name if argv else str(pid)


# ---- one local run ------------------------------------------------------------------------------


def _count_rows(path: str | None) -> int | None:
    """Data rows of the predictions CSV (its header excluded)."""
    if not path or not Path(path).is_file():
        return None
    with open(path, "rb") as handle:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
    return max(0, lines - 1)


def end_to_end(dataset: Path, timeout: float | None = None) -> dict[str, Any]:
    """Wall time of one local run, the jobs' seconds, the overhead, per-state timings, rows scored and
    peak memory. A failed run (or no summary at all) is a result with its reason, not an exception."""
    with tempfile.TemporaryDirectory() as state_dir:
        argv = [sys.executable, "-m", "emulator", "run", "--dataset", str(dataset)]
        argv += ["--state-dir", state_dir, "--json", "--quiet"]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            started = time.perf_counter()
            process = subprocess.Popen(
                argv, cwd=ROOT, stdout=out, stderr=err, env={**os.environ, "PYTHONPATH": str(ROOT)}
            )
            sampler = TreeSampler(process.pid).start()
            if timeout is not None:
                killer = threading.Timer(timeout, process.kill)
                killer.start()
            _pid, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
            if timeout is not None:
                killer.cancel()
            sampler.stop()
            process.returncode = os.waitstatus_to_exitcode(status)
            out.seek(0)
            err.seek(0)
            stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
        try:
            summary = json.loads(stdout) if stdout.strip() else None
        except ValueError:
            summary = None
        rows = _count_rows((summary or {}).get("predictions"))
    result: dict[str, Any] = {
        "wall_seconds": wall,
        "exit_code": process.returncode,
        "peak_rss_mb": usage.ru_maxrss / 1024,  # KiB on Linux
        "process_peaks_mb": sorted(
            ((name, peak) for name, peak in sampler.peaks.values()), key=lambda item: -item[1]
        ),
        "predicted_rows": rows,
    }
    if summary is None:
        result.update(status="NO SUMMARY", reason=stderr.strip()[-600:] or f"exit {process.returncode}")
        return result
    jobs = float(sum(summary.get("job_seconds", {}).values()))
    result.update(
        {
            "startup_seconds": summary.get("startup_seconds"),
            "lambda_seconds": summary.get("lambda_seconds"),
            "cpu_seconds": summary.get("cpu_seconds") or {},
            "status": summary["status"],
            "reason": " ".join(str(summary.get(k) or "") for k in ("error", "cause")).strip()[:600],
            "job_seconds": jobs,
            "overhead_seconds": wall - jobs,
            "jobs": summary.get("job_seconds", {}),
            "states": [
                (s["state"], s["seconds"]) for s in summary.get("states", []) if s.get("seconds") is not None
            ],
            "decision": summary.get("decision"),
            "roc_auc": (summary.get("metrics") or {}).get("roc_auc"),
            "drift_rows": (summary.get("drift") or {}).get("rows"),
        }
    )
    return result


def short_job_name(name: str) -> str:
    """`...-train-261201234846-538821a3-1` -> `train`. EnrichHistory's job takes the drift job's name
    with an `h` before its attempt (`...-drift-...-h1`, the ASL's EnrichHistory state), so it is
    `enrich`: without that the bench's job list read "drift" twice."""
    stem, attempt = name.rsplit("-", 1)
    if attempt.startswith("h"):
        return "enrich"
    return stem.rsplit("-", 2)[0][-5:]


def print_details(result: dict[str, Any]) -> None:
    """The breakdown under a run's figures: where its seconds and its memory went."""
    if result["status"] == "NO SUMMARY":
        print(f"  no summary: {result['reason']}")
        return
    print(
        f"  execution {result['status']}, decision {result['decision']}, roc_auc {result['roc_auc']}, "
        f"rows predicted {result['predicted_rows']}; of the overhead: runtime start-up "
        f"{result['startup_seconds']:.1f} s, Lambda handlers {result['lambda_seconds']:.1f} s"
    )
    if result["status"] != "SUCCEEDED":
        print(f"  failed: {result['reason']}")
    cpu = result["cpu_seconds"]
    if cpu:
        print(
            f"  CPU (s, steady when the machine is shared): runtime process {cpu['runtime']:.1f}, "
            f"job processes {cpu['jobs']:.1f}"
        )
    print("  jobs (s): " + ", ".join(f"{short_job_name(n)} {s:.1f}" for n, s in result["jobs"].items()))
    print(
        "  states (s): "
        + ", ".join(f"{name} {seconds:.2f}" for name, seconds in result["states"] if seconds >= 0.01)
    )
    peaks = ", ".join(f"{name} {mb:.0f}" for name, mb in result["process_peaks_mb"][:6])
    print(f"  peak RSS (MB): tree max {result['peak_rss_mb']:.0f} (wait4); per process (sampled) {peaks}")


def print_end_to_end(dataset: Path, result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Print the figure as rows of the benchmark table (bar / ours / pass) plus per-state timings
    (of `result` when the caller measured the run already, else of a run made now)."""
    result = result if result is not None else end_to_end(dataset)
    ok = result["status"] == "SUCCEEDED"
    print()
    print(f"End to end: python -m emulator run --dataset {dataset.name} (fresh state, start-up included)")
    print("| figure                                 |        bar |       ours | pass |")
    print("|----------------------------------------|------------|------------|------|")
    for label, key in (
        ("local run, wall s", "wall_seconds"),
        ("orchestration overhead (wall - jobs), s", "overhead_seconds"),
    ):
        value = result.get(key)
        passed = ok and value is not None and value <= BARS[key]
        shown = "-" if value is None else f"{value:.1f}"
        print(
            f"| {label:<38} | {'<= ' + format(BARS[key], 'g'):>10} | {shown:>10} | "
            f"{'PASS' if passed else 'FAIL':>4} |"
        )
    print_details(result)
    return result


# ---- what a run would cost on AWS ------------------------------------------------------------------


@dataclass(frozen=True)
class Scale:
    """One dataset size and the instances docs/scaling.md gives it."""

    name: str
    rows: int
    training: str
    transform: str
    transform_count: int
    processing: str


SCALES = (
    Scale("1x", 101_766, "ml.m5.large", "ml.m5.large", 1, "ml.m5.large"),
    Scale("10x", 1_017_660, "ml.m5.xlarge", "ml.m5.large", 1, "ml.m5.large"),
    Scale("100x", 10_176_600, "ml.m5.4xlarge", "ml.m5.large", 4, "ml.m5.xlarge"),
)


def aws_estimate(rates: dict[str, float], prices: dict[str, Any]) -> list[dict[str, Any]]:
    """Seconds and dollars of one run per scale, from measured single-core rates (rows/s).

    `rates`: `training` (a training job's rows/s, report included), `transform` (rows/s of one
    serving process, CSV in, predictions out), `drift` (rows/s of the drift job). Every job is
    single-threaded (pipelines/container.py), so an AWS vCPU is taken to run as fast as a core
    measured here, and a transform instance to run one serving process (MaxConcurrentTransforms
    1). Each job also pays the start-up of prices["job_startup_seconds"], billed (an upper bound).
    The Lambda functions and the state transitions cost less than a cent and a second: left out."""
    startup = float(prices["job_startup_seconds"]["value"])
    hourly = prices["sagemaker_per_instance_hour"]
    out = []
    for scale in SCALES:
        train = startup + scale.rows / rates["training"]
        transform = startup + scale.rows / (scale.transform_count * rates["transform"])
        drift = startup + scale.rows / rates["drift"]
        cost = (
            hourly["training"][scale.training] * train
            + hourly["batch_transform"][scale.transform] * scale.transform_count * transform
            + hourly["processing"][scale.processing] * drift
        ) / 3600
        out.append(
            {
                "scale": scale,
                "training_seconds": train,
                "transform_seconds": transform,
                "drift_seconds": drift,
                "wall_seconds": train + transform + drift,
                "cost_usd": cost,
            }
        )
    return out


def print_aws_estimate(rates: dict[str, float]) -> None:
    prices = json.loads(PRICES.read_text())
    print()
    print(
        f"AWS estimate ({prices['region']} on-demand prices of {prices['prices_as_of']}, "
        f"{prices['job_startup_seconds']['value']:.0f} s start-up per job; docs/scaling.md): rates "
        + ", ".join(f"{name} {rate:,.0f} rows/s" for name, rate in rates.items())
    )
    for estimate in aws_estimate(rates, prices):
        scale = estimate["scale"]
        jobs = (
            f"training {scale.training} {estimate['training_seconds']:.0f} s, "
            f"transform {scale.transform_count} x {scale.transform} {estimate['transform_seconds']:.0f} s, "
            f"drift {scale.processing} {estimate['drift_seconds']:.0f} s"
        )
        total = f"run {estimate['wall_seconds'] / 60:.1f} min, ${estimate['cost_usd']:.3f}"
        print(f"  {scale.name:>4} {scale.rows:>10,} rows: {jobs}; {total}")


if __name__ == "__main__":
    print_end_to_end(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "data" / "diabetic_data.csv.gz")


# ---- the local AWS endpoint (`emulator api --aws-port`) -------------------------------------------------

ENDPOINT_BARS = {"cp_over_run": 1.15, "idle_core_percent": 1.0}
IDLE_SECONDS = 20.0  # how long the idle endpoint's CPU is counted


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    """utime + stime of one process (its threads included), from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def endpoint_figures(csv: Path, timeout: float = 900.0) -> dict[str, Any]:
    """`aws s3 cp` of a plain CSV to `python -m emulator api`'s endpoint until the run it starts has
    ended, against `python -m emulator run --dataset` on the same file (fresh state each, measured in
    this call), and the endpoint's CPU while idle (IDLE_SECONDS after that run, the server's own
    process). The cp figure starts when `aws s3 cp` starts (the server is up already, as a user's is);
    the run figure includes its start-up (what `emulator run` costs a user), also given apart."""
    import boto3
    from botocore.exceptions import EndpointConnectionError

    run = end_to_end(csv, timeout=timeout)
    aws_cli = Path(sys.executable).with_name("aws")
    with tempfile.TemporaryDirectory() as state_dir:
        url = f"http://127.0.0.1:{_free_port()}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=url, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1", PYTHONPATH=str(ROOT),
        )  # fmt: skip
        argv = [sys.executable, "-m", "emulator", "api", "--quiet", "--port", str(_free_port())]
        argv += ["--aws-port", url.rsplit(":", 1)[1], "--state-dir", state_dir]
        server = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            sfn = boto3.client(
                "stepfunctions", endpoint_url=url, region_name="us-east-1",
                aws_access_key_id="test", aws_secret_access_key="test",
            )  # fmt: skip
            deadline = time.monotonic() + 180
            while True:
                try:
                    machine = sfn.list_state_machines()["stateMachines"][0]["stateMachineArn"]
                    break
                except EndpointConnectionError:  # not up yet: the bench waits, bounded
                    if server.poll() is not None or time.monotonic() > deadline:
                        return {"status": "NO SERVER", "run": run}
                    time.sleep(0.5)
            bucket = "readmission-local-artifactbucket"
            started = time.perf_counter()
            copied = subprocess.run(
                [str(aws_cli), "s3", "cp", str(csv), f"s3://{bucket}/datasets/", "--only-show-errors"],
                env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
            cp_seconds = time.perf_counter() - started
            status = "NO RUN"
            while copied.returncode == 0 and time.perf_counter() - started < timeout:
                found = sfn.list_executions(stateMachineArn=machine)["executions"]
                if found and found[0]["status"] != "RUNNING":
                    status = found[0]["status"]
                    break
                time.sleep(0.25)
            finished = time.perf_counter() - started
            time.sleep(5.0)  # the watcher saves the run; then the endpoint is idle
            before, at = _cpu_seconds(server.pid), time.perf_counter()
            time.sleep(IDLE_SECONDS)
            idle = (_cpu_seconds(server.pid) - before) / (time.perf_counter() - at) * 100
        finally:
            server.send_signal(2)  # SIGINT: Ctrl-C
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    return {
        "status": status,
        "cp_seconds": cp_seconds,
        "cp_to_finished_seconds": finished,
        "run": run,
        "run_wall_seconds": run["wall_seconds"],
        "run_startup_seconds": run.get("startup_seconds"),
        "cp_over_run": finished / run["wall_seconds"],
        "idle_core_percent": idle,
        "cp_error": copied.stderr.strip()[-300:],
    }


def print_endpoint_figures(result: dict[str, Any]) -> None:
    ok = result.get("status") == "SUCCEEDED" and result["run"].get("status") == "SUCCEEDED"
    print()
    print("Local AWS endpoint: aws s3 cp of the plain CSV to a finished run vs python -m emulator run")
    print("| figure                                 |        bar |       ours | pass |")
    print("|----------------------------------------|------------|------------|------|")
    rows = (
        ("aws s3 cp -> run ended / emulator run", "cp_over_run", "{:.2f}x"),
        ("endpoint idle CPU, % of one core", "idle_core_percent", "{:.2f}"),
    )
    for label, key, shape in rows:
        value = result.get(key)
        passed = ok and value is not None and value <= ENDPOINT_BARS[key]
        shown = "-" if value is None else shape.format(value)
        print(f"| {label:<38} | {'<= ' + format(ENDPOINT_BARS[key], 'g'):>10} | {shown:>10} | "
              f"{'PASS' if passed else 'FAIL':>4} |")  # fmt: skip
    if "cp_to_finished_seconds" in result:
        print(
            f"aws s3 cp {result['cp_seconds']:.1f} s, run ended {result['cp_to_finished_seconds']:.1f} s "
            f"after the cp started ({result['status']}); emulator run {result['run_wall_seconds']:.1f} s "
            f"wall ({result['run']['status']}), of it start-up {result['run_startup_seconds'] or 0:.1f} s"
        )
    else:
        print(f"not measured: {result.get('status')}")
