"""The SageMaker container this code targets, declared once.

The template's framework-version parameter, the emulator and the compatibility job check against
these values (the bundle writes them to `container.json`). Standard library only, Python 3.9.
"""

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


def as_json_dict() -> dict[str, object]:
    """The content of `container.json` written beside the bundle."""
    return {
        "framework_version": FRAMEWORK_VERSION,
        "python_version": PYTHON_VERSION,
        "scikit_learn_version": SKLEARN_VERSION,
        "extra_requirements": list(EXTRA_REQUIREMENTS),
    }
