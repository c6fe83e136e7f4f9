"""SageMaker script-mode training entry point (the bundle's root `train.py` calls `main`).

Reads the `training` channel (`SM_CHANNEL_TRAINING`) and the optional `champion` channel,
hyperparameters from `SM_HPS` and/or `--name value` arguments (arguments win), and writes the
model artifacts to `SM_MODEL_DIR`, the report to `SM_OUTPUT_DATA_DIR`. Each metric is printed as
`METRIC <name>=<value>` for the job's MetricDefinitions. Bad data or configuration: the reason goes
to `$SM_OUTPUT_DIR/failure` (SageMaker's FailureReason) and the exit status is 1.
"""

import argparse
import json
import os
import sys
import time
import traceback
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

from pipelines import container
from pipelines.data import read_training_data
from pipelines.errors import ConfigError, DatasetError

# The metrics printed as `METRIC <name>=<value>` lines (the job's MetricDefinitions read them).
METRIC_NAMES = ("roc_auc", "pr_auc", "log_loss", "brier")


def _decode(value: Any) -> Any:
    """Hyperparameters arrive as strings, sometimes JSON-quoted (`"\\"HistGradientBoosting\\""`)."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as ConfigError (the job's FailureReason), not exit 2."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        raise ConfigError(f"bad arguments: {message}")


def _parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """`--name value` / `--name=value` pairs, as the training toolkit passes each hyperparameter.

    The names are open-ended (a request may carry any hyperparameter; the estimator ignores those it
    does not know), so the parser declares the names the command line holds."""
    parser = _ArgumentParser(prog="train.py", allow_abbrev=False, add_help=False)
    names = {token[2:].split("=", 1)[0] for token in argv if token.startswith("--") and len(token) > 2}
    for name in sorted(names):
        parser.add_argument(f"--{name}", dest=name.replace("-", "_"))
    parsed, extra = parser.parse_known_args(list(argv))
    if extra:
        raise ConfigError(f"unexpected argument {extra[0]!r} (expected --name value)")
    return {k: v for k, v in vars(parsed).items() if v is not None}


def hyperparameters(argv: Sequence[str], environ: dict[str, str]) -> dict[str, Any]:
    """SM_HPS merged with `--name value` arguments; SageMaker's own `sagemaker_*` keys dropped."""
    merged: dict[str, Any] = {}
    raw_hps = environ.get("SM_HPS")
    if raw_hps:
        try:
            merged.update({k: _decode(v) for k, v in json.loads(raw_hps).items()})
        except ValueError as exc:
            raise ConfigError(f"SM_HPS is not JSON: {exc}") from exc
    merged.update({name: _decode(value) for name, value in _parse_arguments(argv).items()})
    return {k: v for k, v in merged.items() if not k.startswith("sagemaker_")}


def write_failure(output_dir: str, reason: str, detail: str = "") -> None:
    """The failure file SageMaker reports as FailureReason: the one-line reason first."""
    try:
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, "failure"), "w") as handle:
            handle.write(reason.strip().splitlines()[0] if reason.strip() else "training failed")
            if detail:
                handle.write("\n\n" + detail)
    except OSError as exc:  # the reason still reaches the log below
        print(f"could not write the failure file: {exc}", file=sys.stderr)


def main(argv: Optional[Sequence[str]] = None, environ: Optional[dict[str, str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ) if environ is None else environ
    output_dir = environ.get("SM_OUTPUT_DIR", container.DEFAULT_OUTPUT_DIR)
    # The first line names the model and the job, so a log search by the model's name finds the job's
    # lines (`aws logs filter-log-events --filter-pattern medication-adherence`): job names cut it short.
    print(
        "training model {} in job {}".format(
            environ.get("MODEL_NAME", "(unnamed)"), environ.get("TRAINING_JOB_NAME", "(local)")
        )
    )
    try:
        hps = hyperparameters(argv, environ)
        started = time.perf_counter()
        # Data first, with pandas only: a bad upload fails before scikit-learn is even imported.
        raw = read_training_data(environ.get("SM_CHANNEL_TRAINING", container.DEFAULT_TRAINING_CHANNEL))
        read_seconds = time.perf_counter() - started
        from pipelines.training_pipeline import TrainingPipeline

        pipeline = TrainingPipeline(hps)
        champion = environ.get("SM_CHANNEL_CHAMPION")
        if champion is None and os.path.isdir(container.DEFAULT_CHAMPION_CHANNEL):
            champion = container.DEFAULT_CHAMPION_CHANNEL
        result = pipeline.execute_frame(
            raw,
            environ.get("SM_MODEL_DIR", container.DEFAULT_MODEL_DIR),
            report_dir=environ.get("SM_OUTPUT_DATA_DIR", container.DEFAULT_OUTPUT_DATA_DIR),
            champion_path=champion,
            read_seconds=read_seconds,
        )
    except (DatasetError, ConfigError) as exc:
        write_failure(output_dir, str(exc))
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        write_failure(output_dir, f"Training failed: {type(exc).__name__}: {exc}", traceback.format_exc())
        traceback.print_exc()
        return 2
    metrics = result.metrics
    for name in METRIC_NAMES:
        print("METRIC {}={:.6f}".format(name, metrics["model"][name]))
    if metrics.get("champion"):
        for name in METRIC_NAMES:
            print("METRIC champion_{}={:.6f}".format(name, metrics["champion"][name]))
    comparison = metrics.get("comparison")
    if comparison:
        low, high = comparison["interval"]
        print("METRIC roc_auc_difference={:.6f}".format(comparison["roc_auc_difference"]))
        print(f"METRIC roc_auc_difference_low={low:.6f}")
        print(f"METRIC roc_auc_difference_high={high:.6f}")
        print("METRIC roc_auc_difference_p_value={:.6g}".format(comparison["p_value"]))
    print(
        "training rows={} validation rows={} excluded={} threshold={:.4f} fit={:.2f}s".format(
            metrics["rows"]["training"],
            metrics["rows"]["validation"],
            metrics["rows"]["excluded_death_or_hospice"],
            metrics["model"]["threshold"],
            result.timings["fit"],
        )
    )
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
