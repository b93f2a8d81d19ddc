"""Generate Python code (messages, gRPC stubs, mypy stubs) for proto/ into libs/protos.

`--check` regenerates into a temporary folder and fails if libs/protos differs,
so a test can tell when someone edited a .proto and forgot `make proto`.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
OUT_DIR = ROOT / "libs" / "protos"
PACKAGE = "kaseum"
# The mypy plugins are console scripts beside this interpreter.
BIN = Path(sys.executable).parent


def generate(out: Path) -> None:
    sources = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    include = str(Path(grpc_tools.__file__).parent / "_proto")
    args = [
        "grpc_tools.protoc",
        f"--plugin=protoc-gen-mypy={BIN / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN / 'protoc-gen-mypy_grpc'}",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        *sources,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    for folder in [out / PACKAGE, *(p for p in (out / PACKAGE).rglob("*") if p.is_dir())]:
        (folder / "__init__.py").touch()
    (out / PACKAGE / "py.typed").touch()


def tree(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in (root / PACKAGE).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if libs/protos is stale")
    args = parser.parse_args()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            generate(Path(tmp))
            fresh, current = tree(Path(tmp)), tree(OUT_DIR)
        stale = sorted(k for k in fresh.keys() | current.keys() if fresh.get(k) != current.get(k))
        if stale:
            print("libs/protos is stale; run `make proto`:", *stale, sep="\n  ", file=sys.stderr)
            return 1
        print("libs/protos is up to date")
        return 0
    shutil.rmtree(OUT_DIR / PACKAGE, ignore_errors=True)
    generate(OUT_DIR)
    print(f"generated {len(tree(OUT_DIR))} files into {OUT_DIR.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
