"""The SageMaker container this code targets, declared once.

The template's framework-version parameter, the emulator and the compatibility job check against
these values (the bundle writes them to `container.json`). Standard library only, Python 3.9.
"""

import os

# sagemaker-scikit-learn image tag: Python 3.9, scikit-learn 1.2.1.
FRAMEWORK_VERSION = "1.2-1"
PYTHON_VERSION = "3.9"
SKLEARN_VERSION = "1.2.1"

# Only what the image lacks; pinned to a release that has Python 3.9 wheels and accepts numpy 1.2x.
EXTRA_REQUIREMENTS = ("matplotlib==3.7.5",)

# Script-mode defaults (sagemaker-training-toolkit) used when a variable is absent.
DEFAULT_MODEL_DIR = "/opt/ml/model"
DEFAULT_OUTPUT_DIR = "/opt/ml/output"
DEFAULT_OUTPUT_DATA_DIR = "/opt/ml/output/data"
DEFAULT_TRAINING_CHANNEL = "/opt/ml/input/data/training"
DEFAULT_CHAMPION_CHANNEL = "/opt/ml/input/data/champion"


# OpenMP threads for fitting and scoring (HistGradientBoosting, RandomForest). One by default: the
# serving stack already runs one worker per vCPU, and OpenMP's spinning barriers collapse when the
# cores are shared (measured on 2 cores with other work running: fit 5 s with 1 thread, 33-50 s
# with 2; scikit-learn's HGB predict 0.84 s vs 2.39 s). HistGradientBoosting scoring goes through
# pipelines/tree_scoring.py (numpy, no OpenMP) and does not depend on it. Set PIPELINES_NUM_THREADS
# on a dedicated multi-core training instance.
NUM_THREADS_ENV = "PIPELINES_NUM_THREADS"


def num_threads() -> int:
    """Threads the numeric libraries may use (PIPELINES_NUM_THREADS, default 1)."""
    try:
        return max(1, int(os.environ.get(NUM_THREADS_ENV, "1")))
    except ValueError:
        return 1


def as_json_dict() -> dict[str, object]:
    """The content of `container.json` written beside the bundle."""
    return {
        "framework_version": FRAMEWORK_VERSION,
        "python_version": PYTHON_VERSION,
        "scikit_learn_version": SKLEARN_VERSION,
        "extra_requirements": list(EXTRA_REQUIREMENTS),
    }
