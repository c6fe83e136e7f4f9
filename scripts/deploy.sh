#!/usr/bin/env bash
# Deploy the stack and publish the SageMaker code bundle (docs/deploy.md).
#
#   scripts/deploy.sh [ENV] [extra sam deploy options...]     ENV: default | dev (default) | prod
#
# 1. sam build   - the Lambda package (functions/ + functions/requirements.txt) and template
# 2. sam deploy  - the stack, with samconfig.toml's [ENV] settings (prod asks before changing)
# 3. python -m pipelines.bundle --out build/code   - the script-mode bundle and dataset_schema.json
# 4. scripts/publish_code.py - upload it to s3://<stack bucket>/code/ (removing stale files)
# 5. scripts/publish_console.py - the web console (console/, config.json from the outputs) to its bucket
# A failed step stops the script: the code is only published to a stack that deployed.
# `make deploy ENV=...` runs this with the SAM CLI from .venv-tools; set SAM/PY to use others.
set -euo pipefail
cd "$(dirname "$0")/.."

ENV_NAME="${1:-dev}"
if [[ $# -gt 0 ]]; then shift; fi
SAM="${SAM:-sam}"
PY="${PY:-.venv/bin/python}"
export SAM_CLI_TELEMETRY="${SAM_CLI_TELEMETRY:-0}"

echo "==> sam build (${ENV_NAME})"
# The builder needs python3.X of the template's Lambda runtime on PATH (scripts/lambda_python.py).
LAMBDA_PYTHON_PATH="$("$PY" scripts/lambda_python.py)"
PATH="${LAMBDA_PYTHON_PATH}${PATH}" "$SAM" build --config-env "$ENV_NAME"
echo "==> sam deploy (${ENV_NAME})"
"$SAM" deploy --config-env "$ENV_NAME" "$@"
echo "==> code bundle"
"$PY" -m pipelines.bundle --out build/code
echo "==> publish code bundle"
"$PY" scripts/publish_code.py --config-env "$ENV_NAME" --bundle-dir build/code
echo "==> publish web console"
"$PY" scripts/publish_console.py --config-env "$ENV_NAME"
