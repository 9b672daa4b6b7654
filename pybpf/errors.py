"""Every exception pybpf raises: one hierarchy, structured fields, messages made from the fields.

Everything a user can provoke with bad input (a hostile ELF, a bogus BTF, an invalid
instruction, a wrong-sized key, a program that loops forever) ends up as a `BpfError`
subclass. Foreign exceptions (elftools, lark, LLVM) are converted in exactly one place each,
with ``raise ... from e``. The CLI maps the classes to exit codes via ``exit_code``.
"""

from __future__ import annotations

import errno as _errno
from typing import Any


class BpfError(Exception):
    """Base of every pybpf error. ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedError(BpfError):
    """A feature pybpf knows about but does not implement; named in the README."""

    exit_code = 3

    def __init__(self, feature: str, detail: str = "") -> None:
        self.feature = feature
        self.detail = detail
        super().__init__(f"unsupported: {feature}" + (f" ({detail})" if detail else ""))


class LoadError(BpfError):
    """The object file cannot be loaded; names where: path, section, symbol, byte offset."""

    def __init__(
        self,
        reason: str,
        *,
        path: str | None = None,
        section: str | None = None,
        symbol: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.path = path
        self.section = section
        self.symbol = symbol
        self.offset = offset
        where = []
        if path:
            where.append(path)
        if section:
            where.append(f"section {section}")
        if symbol:
            where.append(f"symbol {symbol}")
        if offset is not None:
            where.append(f"offset {offset:#x}")
        super().__init__(f"{': '.join([', '.join(where), reason]) if where else reason}")


class ElfFormatError(LoadError):
    """The ELF container itself is malformed (headers, section table, string tables)."""


class RelocationError(LoadError):
    """A relocation is malformed or points at nothing usable."""


class BtfError(LoadError):
    """.BTF or .BTF.ext is malformed, or a CO-RE relocation cannot be satisfied."""


class AsmError(BpfError):
    """Assembly text that does not parse or does not encode."""

    def __init__(
        self, reason: str, *, line: int, column: int = 0, expected: list[str] | None = None
    ) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        self.expected = sorted(expected) if expected else []
        text = f"line {line}"
        if column:
            text += f", column {column}"
        text += f": {reason}"
        if self.expected:
            text += f" (expected one of: {', '.join(self.expected)})"
        super().__init__(text)


class DecodeError(BpfError):
    """Instruction bytes that are not a valid instruction (RFC 9669 encoding rules)."""

    def __init__(self, reason: str, *, pc: int, raw: bytes = b"") -> None:
        self.reason = reason
        self.pc = pc
        self.raw = raw
        shown = f" [{raw.hex(' ')}]" if raw else ""
        super().__init__(f"pc {pc}: {reason}{shown}")


class LinkError(BpfError):
    """A program refers to a helper, kfunc, map or type that cannot be resolved."""

    def __init__(self, reason: str, *, program: str | None = None, pc: int | None = None) -> None:
        self.reason = reason
        self.program = program
        self.pc = pc
        where = []
        if program:
            where.append(f"program {program}")
        if pc is not None:
            where.append(f"pc {pc}")
        super().__init__(f"{', '.join(where)}: {reason}" if where else reason)


class NotFoundError(BpfError, KeyError):
    """A name that is not in an object: a program, map or struct_ops variable (also a
    KeyError, so ``name in obj.programs`` and ``.get`` work as for a dict)."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = known
        super().__init__(f"no {kind} named {name!r} (known: {', '.join(known) or 'none'})")

    def __str__(self) -> str:
        return self.message


class VerificationError(BpfError):
    """The verifier rejected a program; ``report`` is the full VerifierReport."""

    exit_code = 1

    def __init__(self, message: str, report: Any = None) -> None:
        self.report = report
        super().__init__(message)


class Trap(BpfError):
    """A runtime fault of a running program: which instruction, and why. The runtime adds
    which program it was and, when the object has line info, the C source line."""

    exit_code = 1
    program: str | None = None
    source_line: str | None = None

    def __init__(self, reason: str, *, pc: int, insn: str | None = None) -> None:
        self.reason = reason
        self.pc = pc
        self.insn = insn
        shown = f" ({insn})" if insn else ""
        super().__init__(f"pc {pc}{shown}: {reason}")

    def locate(self, program: str, source_line: str | None) -> None:
        """Record the program (and C line) the fault happened in; the innermost one wins,
        so a trap passing back through a tail-call or callback caller keeps its origin."""
        if self.program is not None:
            return
        self.program = program
        self.source_line = source_line
        where = f"program {program}" + (f", {source_line}" if source_line else "")
        self.message = f"{self.message} [{where}]"
        self.args = (self.message,)


class MemoryAccessError(Trap):
    """A load or store outside every region the program may touch."""

    def __init__(
        self, *, pc: int, address: int, size: int, write: bool, insn: str | None = None
    ) -> None:
        self.address = address
        self.size = size
        self.write = write
        kind = "write" if write else "read"
        what = "null pointer" if 0 <= address < 4096 else "address"
        super().__init__(
            f"invalid {kind} of {size} byte(s) at {what} {address:#x}", pc=pc, insn=insn
        )


class ExhaustionError(BpfError):
    """A resource limit was reached: instruction budget, call depth, stack, arena space."""

    exit_code = 1

    def __init__(self, reason: str, *, pc: int | None = None, limit: int | None = None) -> None:
        self.reason = reason
        self.pc = pc
        self.limit = limit
        super().__init__(f"pc {pc}: {reason}" if pc is not None else reason)


class ArenaError(BpfError):
    """Misuse of the Arena: bad size or alignment, double or unknown free, use after close."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"arena: {reason}")


class MapError(BpfError):
    """A map operation failed; ``errno`` carries the kernel's errno with its kernel meaning."""

    exit_code = 1

    def __init__(self, errno: int, reason: str, *, map_name: str | None = None) -> None:
        self.errno = errno
        self.reason = reason
        self.map_name = map_name
        code = _errno.errorcode.get(errno, str(errno))
        prefix = f"map {map_name}: " if map_name else ""
        super().__init__(f"{prefix}{reason} ({code})")


class RunInputError(BpfError):
    """Input a test run refuses as BPF_PROG_TEST_RUN would (``errno``: EINVAL, E2BIG, ...)."""

    def __init__(self, errno: int, reason: str) -> None:
        self.errno = errno
        self.reason = reason
        code = _errno.errorcode.get(errno, str(errno))
        super().__init__(f"test run input: {reason} ({code})")
