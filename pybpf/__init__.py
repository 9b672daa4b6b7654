"""pybpf: a userspace eBPF runtime (loader, verifier, interpreter, LLVM JIT) in Python."""

from pybpf.errors import (
    AsmError,
    BpfError,
    DecodeError,
    ExhaustionError,
    LoadError,
    MapError,
    MemoryAccessError,
    Trap,
    UnsupportedError,
)

__all__ = [
    "AsmError",
    "BpfError",
    "DecodeError",
    "ExhaustionError",
    "LoadError",
    "MapError",
    "MemoryAccessError",
    "Trap",
    "UnsupportedError",
]
