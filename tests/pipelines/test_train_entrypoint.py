"""The SageMaker training contract, end to end: the bundle's `train.py` run as a subprocess.

Like SageMaker (and the local runtime), the test extracts `sourcedir.tar.gz`, sets the `SM_*`
variables of an `/opt/ml`-like tree, runs `python train.py --name value ...` with the extracted
directory as working directory, then checks the artifacts, the METRIC lines and the failure file.
"""

import json
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Optional

import pytest

from pipelines import bundle
from tests.pipelines.pipeline_cases import BAD_DATA_CASES, make_bad_case

METRIC_LINE = re.compile(r"^METRIC (\w+)=([-+0-9.eE]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def code_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bundle")
    paths = bundle.build(str(out))
    code = tmp_path_factory.mktemp("code")
    with tarfile.open(paths["sourcedir"]) as tar:
        tar.extractall(code)
    return code


def start_training(
    code: Path, opt_ml: Path, args: list[str], champion: Optional[Path] = None
) -> subprocess.Popen:
    """Start `python train.py ARGS` in the extracted bundle with the SM_* variables of `opt_ml`."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(
        {
            "SM_MODEL_DIR": str(opt_ml / "model"),
            "SM_OUTPUT_DIR": str(opt_ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
            "SM_CHANNEL_TRAINING": str(opt_ml / "input" / "data" / "training"),
            "SM_HPS": json.dumps({"target": "readmitted_30d", "sagemaker_program": '"train.py"'}),
        }
    )
    if champion is not None:
        env["SM_CHANNEL_CHAMPION"] = str(champion)
    for name in ("model", "output/data"):
        (opt_ml / name).mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "train.py", *args],
        cwd=code,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_training(code: Path, opt_ml: Path, args: list[str], champion: Optional[Path] = None):
    process = start_training(code, opt_ml, args, champion)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.fixture(scope="module")
def job(code_dir: Path, tmp_path_factory: pytest.TempPathFactory, raw_lines: list[str]):
    opt_ml = tmp_path_factory.mktemp("opt_ml")
    channel = opt_ml / "input" / "data" / "training"
    channel.mkdir(parents=True)
    (channel / "encounters.csv").write_text("\n".join(raw_lines) + "\n")
    result = run_training(
        code_dir, opt_ml, ["--algorithm", "HistGradientBoosting", "--seed", "3", "--max_iter", "40"]
    )
    return opt_ml, result


def test_training_job_succeeds_and_writes_the_model_artifacts(job):
    opt_ml, result = job
    assert result.returncode == 0, result.stderr
    model_dir = opt_ml / "model"
    assert sorted(p.name for p in model_dir.iterdir()) == [
        "baseline_statistics.json",
        "features.json",
        "metrics.json",
        "model.joblib",
        "patient_history.csv.gz",
        "patient_history.json",
    ]
    metrics = json.loads((model_dir / "metrics.json").read_text())
    assert metrics["seed"] == 3  # from the command line
    assert metrics["target"] == "readmitted_30d"  # from SM_HPS
    assert metrics["parameters"]["max_iter"] == 40
    assert not (opt_ml / "output" / "failure").exists()


def test_training_job_prints_metric_lines_matching_the_metric_definitions(job):
    opt_ml, result = job
    printed = dict(METRIC_LINE.findall(result.stdout))
    assert set(printed) >= {"roc_auc", "pr_auc", "log_loss", "brier"}
    metrics = json.loads((opt_ml / "model" / "metrics.json").read_text())
    assert float(printed["roc_auc"]) == pytest.approx(metrics["model"]["roc_auc"], abs=1e-6)
    assert re.search(r"METRIC roc_auc=([-+0-9.eE]+)", result.stdout)


def test_training_job_writes_the_report_beside_the_metrics(job):
    opt_ml, _ = job
    data = opt_ml / "output" / "data"
    pictures = [
        "roc_curve.png",
        "precision_recall_curve.png",
        "calibration_curve.png",
        "feature_importance.png",
    ]
    for name in pictures:
        assert (data / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = (data / "report.md").read_text()
    for name in pictures:
        assert f"({name})" in report
    # The subgroup table and the model card beside it, the codes decoded without data/ in the bundle.
    assert set(json.loads((data / "subgroups.json").read_text())["inputs"]) == {
        "race",
        "gender",
        "age",
        "payer_code",
    }
    assert "11 (Expired)" in (data / "model_card.md").read_text()


def test_champion_channel_is_scored_and_reported(job, code_dir, tmp_path, raw_lines):
    opt_ml, _ = job
    champion = tmp_path / "champion"
    champion.mkdir()
    with tarfile.open(champion / "model.tar.gz", "w:gz") as tar:
        for path in (opt_ml / "model").iterdir():
            tar.add(path, arcname=path.name)
    second = tmp_path / "opt_ml"
    channel = second / "input" / "data" / "training"
    channel.mkdir(parents=True)
    (channel / "encounters.csv").write_text("\n".join(raw_lines) + "\n")
    result = run_training(code_dir, second, ["--seed", "3", "--max_iter", "40"], champion=champion)
    assert result.returncode == 0, result.stderr
    assert "METRIC champion_roc_auc=" in result.stdout
    metrics = json.loads((second / "model" / "metrics.json").read_text())
    assert metrics["champion"]["roc_auc"] == pytest.approx(metrics["model"]["roc_auc"])
    low, high = metrics["comparison"]["interval"]
    assert f"METRIC roc_auc_difference_low={low:.6f}" in result.stdout
    assert f"METRIC roc_auc_difference_high={high:.6f}" in result.stdout
    assert "METRIC roc_auc_difference_p_value=" in result.stdout


@pytest.fixture(scope="module")
def bad_jobs(code_dir: Path, tmp_path_factory: pytest.TempPathFactory, raw_lines: list[str]):
    """Every bad-data case as its own job, started together (they overlap their start-up time)."""
    started = {}
    for case in BAD_DATA_CASES:
        opt_ml = tmp_path_factory.mktemp(case)
        make_bad_case(case, opt_ml / "input" / "data" / "training", raw_lines)
        started[case] = (opt_ml, start_training(code_dir, opt_ml, ["--max_iter", "10"]))
    finished = {}
    for case, (opt_ml, process) in started.items():
        stdout, stderr = process.communicate(timeout=300)
        finished[case] = (
            opt_ml,
            subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr),
        )
    return finished


@pytest.mark.parametrize("case", BAD_DATA_CASES)
def test_bad_data_fails_the_job_with_a_named_failure_reason(case, bad_jobs):
    opt_ml, result = bad_jobs[case]
    assert result.returncode != 0
    failure = (opt_ml / "output" / "failure").read_text()
    first_line = failure.splitlines()[0]
    assert f"({case})" in first_line
    assert "Traceback" not in first_line
    assert first_line in result.stderr
    assert list((opt_ml / "model").iterdir()) == []
    assert "METRIC" not in result.stdout


def test_unknown_algorithm_fails_the_job_with_its_reason(code_dir, tmp_path, raw_lines):
    channel = tmp_path / "input" / "data" / "training"
    channel.mkdir(parents=True)
    (channel / "a.csv").write_text("\n".join(raw_lines[:300]) + "\n")
    result = run_training(code_dir, tmp_path, ["--algorithm", "XGBoost"])
    assert result.returncode != 0
    assert "unknown algorithm 'XGBoost'" in (tmp_path / "output" / "failure").read_text()


def test_hyperparameters_merge_sm_hps_with_arguments_which_win() -> None:
    from pipelines.train import hyperparameters

    parsed = hyperparameters(
        ["--seed", "3", "--max_iter=40", "--algorithm", '"RandomForest"', "--min_delta", "-5"],
        {"SM_HPS": json.dumps({"seed": "1", "target": "readmitted_30d", "sagemaker_program": '"train.py"'})},
    )

    assert parsed == {
        "seed": 3,
        "target": "readmitted_30d",
        "algorithm": "RandomForest",
        "max_iter": 40,
        "min_delta": -5,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["stray"], "unexpected argument 'stray'"), (["--seed"], "argument --seed: expected one argument")],
)
def test_a_bad_command_line_is_a_config_error_not_an_exit(argv: list, message: str) -> None:
    from pipelines.errors import ConfigError
    from pipelines.train import hyperparameters

    with pytest.raises(ConfigError, match=message):
        hyperparameters(argv, {})
