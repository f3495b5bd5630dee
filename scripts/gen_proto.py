"""Generate Python code for every .proto under protos/ into an output directory (default gen/).

Writes *_pb2.py, *_pb2.pyi and *_pb2_grpc.py, plus empty __init__.py files so that `sayit` is a
regular package. The output directory is wiped first so deleted protos leave nothing behind.
"""

import shutil
import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    files = sorted(str(p.relative_to(PROTOS)) for p in PROTOS.rglob("*.proto"))
    include = Path(protoc.__file__).parent / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{include}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for package in {p.parent for p in out.rglob("*_pb2.py")}:
        while package != out:
            (package / "__init__.py").touch()
            package = package.parent
    print(f"generated {len(files)} proto files into {out}")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "gen")
