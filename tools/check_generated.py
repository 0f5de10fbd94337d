"""Fail when generated/ differs from what `make proto` would produce from protos/."""

from __future__ import annotations

import filecmp
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUTPUTS = ("billing_pb2.py", "billing_pb2.pyi", "billing_pb2_grpc.py")


def main() -> int:
    """Regenerate into a temporary directory and compare file by file."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                "--proto_path=generated=protos",
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
                Path(tmp, "generated/billing/v1", name),
                ROOT / "generated/billing/v1" / name,
                shallow=False,
            )
        ]
    if stale:
        print(f"generated/ is stale ({', '.join(stale)}): run `make proto` and commit")
        return 1
    print("generated/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
