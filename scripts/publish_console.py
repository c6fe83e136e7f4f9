"""Upload the web console (console/) to the stack's console bucket, with the config.json it reads.

The console is static files (no build): index.html, app.js, style.css and Chart.js from
console/node_modules (`make console-deps`). config.json tells the browser where the API is and which
Cognito app client signs users in, from the stack's outputs; CloudFront is then invalidated so the
new files are served at once.

    python scripts/publish_console.py --config-env dev
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from publish_code import PublishError, samconfig_target

REPO = Path(__file__).resolve().parents[1]
CONSOLE = REPO / "console"
# key in the bucket -> file, exactly what python -m emulator api serves (emulator/api.py CONSOLE_FILES)
FILES = {
    "index.html": CONSOLE / "index.html",
    "app.js": CONSOLE / "app.js",
    "style.css": CONSOLE / "style.css",
    "vendor/chart.umd.min.js": CONSOLE / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js",
}
CONTENT_TYPES = {
    ".html": "text/html",
    ".js": "text/javascript",
    ".css": "text/css",
    ".json": "application/json",
}
OUTPUTS = ("ApiUrl", "ConsoleUrl", "ConsoleBucketName", "ConsoleDistributionId", "ConsoleUserPoolClientId")


def stack_outputs(cloudformation: Any, stack_name: str) -> dict[str, str]:
    try:
        (stack,) = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError as exc:
        raise PublishError(
            f"stack {stack_name} not found ({exc}); deploy it first (scripts/deploy.sh)"
        ) from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    missing = [name for name in (*OUTPUTS, "ConsoleAuthDomain") if name not in outputs]
    if missing:
        raise PublishError(
            f"stack {stack_name} has no {', '.join(missing)} output: deploy the current template"
        )
    return outputs


def console_config(outputs: dict[str, str]) -> dict[str, Any]:
    """What console/app.js reads: the API's base URL and the Cognito hosted UI (code flow with PKCE)."""
    return {
        "apiBase": outputs["ApiUrl"].rstrip("/"),
        "auth": {
            "domain": outputs["ConsoleAuthDomain"].rstrip("/"),
            "clientId": outputs["ConsoleUserPoolClientId"],
            "redirectUri": outputs["ConsoleUrl"],
        },
    }


def publish(outputs: dict[str, str], s3: Any, cloudfront: Any) -> list[str]:
    """Upload the files and config.json; invalidate the distribution. Returns the keys uploaded."""
    missing = [str(path) for path in FILES.values() if not path.is_file()]
    if missing:
        raise PublishError(f"missing {', '.join(missing)}: run `make console-deps`")
    bucket = outputs["ConsoleBucketName"]
    uploaded = []
    for key, path in FILES.items():
        s3.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": CONTENT_TYPES[path.suffix]})
        uploaded.append(key)
    s3.put_object(
        Bucket=bucket,
        Key="config.json",
        Body=json.dumps(console_config(outputs)).encode(),
        ContentType="application/json",
        CacheControl="no-cache",
    )
    uploaded.append("config.json")
    cloudfront.create_invalidation(
        DistributionId=outputs["ConsoleDistributionId"],
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/*"]}, "CallerReference": str(time.time())},
    )
    return uploaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Upload console/ to the stack's console bucket.")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--config-env", help="samconfig.toml environment of the stack")
    target.add_argument("--stack-name", help="the stack's name")
    parser.add_argument(
        "--region", help="AWS region (default: the samconfig environment's, else your profile's)"
    )
    args = parser.parse_args(argv)

    import boto3

    try:
        region, stack_name = args.region, args.stack_name
        if args.config_env:
            stack_name, config_region = samconfig_target(args.config_env)
            region = region or config_region
        session = boto3.session.Session(region_name=region)
        outputs = stack_outputs(session.client("cloudformation"), stack_name)
        uploaded = publish(outputs, session.client("s3"), session.client("cloudfront"))
    except PublishError as exc:
        print(f"publish_console: {exc}", file=sys.stderr)
        return 2
    print(f"published {len(uploaded)} console files; open {outputs['ConsoleUrl']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
