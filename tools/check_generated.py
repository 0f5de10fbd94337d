"""Fail when clients/python/billing_client/v1 differs from what `make proto` makes of protos/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("billing_pb2.py", "billing_pb2.pyi", "billing_pb2_grpc.py")
PACKAGE = "billing_client/v1"
CLIENT = ROOT / "clients" / "python"


def main() -> int:
    """Regenerate into a temporary directory and compare file by file."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"--proto_path={PACKAGE}=protos/billing/v1",
                f"--python_out={tmp}",
                f"--pyi_out={tmp}",
                f"--grpc_python_out={tmp}",
                "protos/billing/v1/billing.proto",
            ],
            cwd=ROOT,
            check=True,
        )
        stale = [
            name
            for name in OUTPUTS
            if not filecmp.cmp(
                Path(tmp, PACKAGE, name),
                CLIENT / PACKAGE / name,
                shallow=False,
            )
        ]
    if stale:
        print(f"{PACKAGE} is stale ({', '.join(stale)}): run `make proto` and commit")
        return 1
    print(f"{PACKAGE} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
