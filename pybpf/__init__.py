"""pybpf: a userspace eBPF runtime (loader, verifier, interpreter, LLVM JIT) in Python.

The public API (ARCHITECTURE.md, "Public surface"): ``load_object`` gives an ``Object`` whose
``programs`` (``Program``: ``.type``, ``.run(...) -> RunResult``), ``maps`` (``Map``: dict-like
lookup / update / delete / keys, push / pop / peek) and ``struct_ops`` (``StructOps``) are
ready to use; ``load_spec`` reads an object without creating anything; ``assemble`` /
``disassemble`` / ``run_program`` work on raw programs; every error is a ``BpfError``.
"""

from pybpf.asm import assemble, disassemble
from pybpf.errors import (
    ArenaError,
    AsmError,
    BpfError,
    BtfError,
    DecodeError,
    ElfFormatError,
    ExhaustionError,
    LinkError,
    LoadError,
    MapError,
    MemoryAccessError,
    NotFoundError,
    RelocationError,
    RunInputError,
    Trap,
    UnsupportedError,
    VerificationError,
)
from pybpf.helpers import DEFAULT_HELPERS, Environment, HelperDecl, HelperSet, KfuncDecl
from pybpf.loader import load_spec
from pybpf.maps import BpfMap as Map
from pybpf.object import KCONFIG_VALUES, Object, Program, RunResult, StructOps, load_object
from pybpf.vm import run_program

__all__ = [
    "DEFAULT_HELPERS",
    "KCONFIG_VALUES",
    "ArenaError",
    "AsmError",
    "BpfError",
    "BtfError",
    "DecodeError",
    "ElfFormatError",
    "Environment",
    "ExhaustionError",
    "HelperDecl",
    "HelperSet",
    "KfuncDecl",
    "LinkError",
    "LoadError",
    "Map",
    "MapError",
    "MemoryAccessError",
    "NotFoundError",
    "Object",
    "Program",
    "RelocationError",
    "RunInputError",
    "RunResult",
    "StructOps",
    "Trap",
    "UnsupportedError",
    "VerificationError",
    "assemble",
    "disassemble",
    "load_object",
    "load_spec",
    "run_program",
]
