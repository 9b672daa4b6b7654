"""The bpf_conformance suite: its `.data` test format and a runner for it.

Sits above the assembler (`pybpf.asm`) and the engines (`pybpf.vm`) and below the CLI: a
`.data` file is parsed into a `ConformanceCase`, its program is assembled (or taken from the
``-- raw`` words), run with the suite's memory and helper 5, and r0 is compared with the
expected result over all 64 bits. The CLI's ``conformance`` and ``conformance-plugin``
commands are thin shells over `run_dir` and `execute`.

The format, as the suite's own parser reads it: sections start with a line ``-- NAME``;
``asm`` (assembly, ``#`` starts a comment), ``raw`` (64-bit little-endian instruction words,
hex with ``0x`` or decimal; replaces the assembly when present), ``mem`` (hex bytes, one per
whitespace-separated token), ``result`` (expected r0: hex if it contains ``0x``, else
decimal), ``error`` (expected error text of the runtime that wrote the test). ``c`` and
``no register offset`` hold notes for humans and are skipped; ``#`` lines before the first
section are the file's header.
"""

from __future__ import annotations

import fnmatch
import struct
from dataclasses import dataclass
from pathlib import Path

from pybpf.asm import assemble
from pybpf.errors import AsmError, BpfError, UnsupportedError
from pybpf.vm import RunOutcome, run_program

U64_MASK = (1 << 64) - 1

# The engines a program can run on; the CLI offers exactly these.
ENGINES = ("interp", "jit")

# The sections a `.data` file may have; the ignored ones are notes for humans.
_SECTIONS = frozenset({"asm", "raw", "mem", "result", "error"})
_IGNORED_SECTIONS = frozenset({"c", "no register offset"})


class ConformanceFormatError(BpfError):
    """A `.data` file that does not follow the format; names the file and the line."""

    exit_code = 2

    def __init__(self, reason: str, *, path: str = "", line: int = 0) -> None:
        self.reason = reason
        self.path = path
        self.line = line
        if path:
            where = f"{path}:{line}: " if line else f"{path}: "
        else:
            where = f"line {line}: " if line else ""
        super().__init__(where + reason)


@dataclass(frozen=True, slots=True)
class ConformanceCase:
    """One test: the program (assembly text or raw bytes), its memory and expected outcome.

    ``result`` is the expected r0 as an unsigned 64-bit value, or None when the test expects
    the runtime to fail (``error`` then holds the text that runtime printed). ``asm_line`` is
    the file line of the assembly's first line (assembler errors are reported in file lines)."""

    name: str
    asm: str | None
    raw: bytes | None
    mem: bytes
    result: int | None
    error: str | None
    path: str = ""
    asm_line: int = 0


@dataclass(frozen=True, slots=True)
class CaseResult:
    """The outcome of one case. ``got`` is r0 (None when the run failed); ``error`` is why a
    run failed (assembly, decoding or a trap), or None when it completed."""

    name: str
    passed: bool
    expected: int | None
    got: int | None
    error: str | None

    @property
    def reason(self) -> str:
        """Why the case failed, in one line (empty when it passed)."""
        if self.passed:
            return ""
        if self.error is not None:
            return self.error
        if self.expected is None:
            return f"expected an error, got r0 = {self.got:#x}"
        return f"expected {self.expected:#x}, got {self.got:#x}"


def hex_bytes(text: str) -> bytes | str:
    """The bytes spelled by ``text``: whitespace-separated hex tokens, each of an even number
    of digits (``"00 1a ff"``, ``"001aff"``); or the reason it spells none."""
    out = bytearray()
    for index, token in enumerate(text.split(), 1):
        if not all(c in "0123456789abcdefABCDEF" for c in token):
            return f"hex token {index} {token!r} has a character that is not a hex digit"
        if len(token) % 2:
            return f"hex token {index} {token!r} has an odd number of hex digits"
        out += bytes.fromhex(token)
    return bytes(out)


def _parse_int(token: str, *, bits: int, what: str) -> int | str:
    """An integer, ``0x`` hex or decimal, optionally negative, that fits ``bits`` bits,
    returned unsigned; or the reason it is none."""
    negative = token.startswith("-")
    body = token[1:] if negative else token
    hexa = body.lower().startswith("0x")
    digits = body[2:] if hexa else body
    allowed = "0123456789abcdefABCDEF" if hexa else "0123456789"
    if not digits or not all(c in allowed for c in digits):
        return f"{what} {token!r} is not a {'hex' if hexa else 'decimal'} number"
    value = int(digits, 16 if hexa else 10)
    value = -value if negative else value
    if not -(1 << (bits - 1)) <= value < 1 << bits:
        return f"{what} {token} does not fit in {bits} bits"
    return value & ((1 << bits) - 1)


def parse_data(text: str, path: str = "") -> ConformanceCase:
    """Parse the text of one `.data` file (``path`` names it in errors and gives the name)."""
    name = Path(path).stem if path else ""
    bodies: dict[str, list[tuple[int, str]]] = {}
    current: str | None = None
    in_header = True
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("--"):
            section = stripped[2:].strip()
            in_header = False
            if section in _IGNORED_SECTIONS:
                current = None
                continue
            if section not in _SECTIONS:
                raise ConformanceFormatError(
                    f"unknown section {stripped!r}", path=path, line=number
                )
            if section in bodies:
                raise ConformanceFormatError(
                    f"section {stripped!r} appears twice", path=path, line=number
                )
            current = section
            bodies[current] = []
            continue
        if current is None:
            if in_header and stripped and not stripped.startswith("#"):
                raise ConformanceFormatError(
                    "text before the first section", path=path, line=number
                )
            continue
        if current != "error":
            stripped = stripped.split("#", 1)[0].strip()
        # The assembly keeps its blank lines so that its line numbers map back to the file.
        if stripped or current == "asm":
            bodies[current].append((number, stripped))

    asm = asm_line = None
    if "asm" in bodies:
        asm = "".join(f"{body}\n" for _, body in bodies["asm"])
        asm_line = bodies["asm"][0][0] if bodies["asm"] else 0
    raw = _parse_raw(bodies["raw"], path) if "raw" in bodies else None
    if asm is None and raw is None:
        raise ConformanceFormatError("no -- asm or -- raw section", path=path)
    mem = _parse_mem(bodies.get("mem", []), path)
    result = _parse_result(bodies["result"], path) if "result" in bodies else None
    error = " ".join(body for _, body in bodies["error"]) if "error" in bodies else None
    if result is None and error is None:
        raise ConformanceFormatError("no -- result or -- error section", path=path)
    return ConformanceCase(name, asm, raw, mem, result, error, path, asm_line or 0)


def _parse_raw(lines: list[tuple[int, str]], path: str) -> bytes:
    words = []
    for number, body in lines:
        for token in body.split():
            value = _parse_int(token, bits=64, what="instruction word")
            if isinstance(value, str):
                raise ConformanceFormatError(value, path=path, line=number)
            words.append(value)
    if not words:
        raise ConformanceFormatError("-- raw section has no instruction words", path=path)
    return struct.pack(f"<{len(words)}Q", *words)


def _parse_mem(lines: list[tuple[int, str]], path: str) -> bytes:
    mem = bytearray()
    for number, body in lines:
        for token in body.split():
            if len(token) > 2:
                raise ConformanceFormatError(
                    f"memory byte {token!r} has more than two hex digits", path=path, line=number
                )
            decoded = hex_bytes(token.rjust(2, "0"))
            if isinstance(decoded, str):
                raise ConformanceFormatError(
                    f"memory byte {token!r} is not hex", path=path, line=number
                )
            mem += decoded
    return bytes(mem)


def _parse_result(lines: list[tuple[int, str]], path: str) -> int:
    if len(lines) != 1 or len(lines[0][1].split()) != 1:
        line = lines[1][0] if len(lines) > 1 else lines[0][0] if lines else 0
        raise ConformanceFormatError("-- result must hold exactly one number", path=path, line=line)
    number, body = lines[0]
    value = _parse_int(body, bits=64, what="result")
    if isinstance(value, str):
        raise ConformanceFormatError(value, path=path, line=number)
    return value


def load_data(path: str | Path) -> ConformanceCase:
    """Read and parse one `.data` file (OSError when it cannot be read)."""
    data = Path(path).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ConformanceFormatError(
            f"not UTF-8 text (byte offset {e.start})", path=str(path), line=line
        ) from e
    return parse_data(text, str(path))


def program_bytes(case: ConformanceCase) -> bytes:
    """The case's program: its raw words, or its assembly assembled (errors in file lines)."""
    if case.raw is not None:
        return case.raw
    try:
        return assemble(case.asm or "", dialect="conformance")
    except AsmError as e:
        raise AsmError(
            e.reason, line=e.line + case.asm_line - 1, column=e.column, expected=e.expected
        ) from e


def _helper_return_first(r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return r1


# The suite's helpers: number 5 returns its first argument (uBPF's plugin calls it "unwind").
CONFORMANCE_HELPERS = {5: _helper_return_first}


def check_engine(engine: str) -> None:
    """Raise UnsupportedError unless programs can run on ``engine`` today."""
    if engine == "jit":
        raise UnsupportedError("jit engine")
    if engine not in ENGINES:
        raise UnsupportedError(f"engine {engine!r}", f"engines: {', '.join(ENGINES)}")


def execute(code: bytes, mem: bytes = b"", engine: str = "interp") -> RunOutcome:
    """Run ``code`` as the suite does: r1/r2 = a writable copy of ``mem`` and its length,
    with the suite's helpers."""
    check_engine(engine)
    return run_program(code, mem=mem, helpers=CONFORMANCE_HELPERS)


def run_case(case: ConformanceCase, engine: str = "interp") -> CaseResult:
    """Assemble and run one case; r0 is compared over all 64 bits. A case that expects an
    error passes when the run fails in any way: the expected text is the wording of the
    runtime that wrote the test, not pybpf's."""
    check_engine(engine)
    try:
        got = execute(program_bytes(case), case.mem, engine).r0 & U64_MASK
    except BpfError as e:
        return CaseResult(case.name, case.result is None, case.result, None, str(e))
    return CaseResult(case.name, case.result == got, case.result, got, None)


def run_dir(path: str | Path, engine: str = "interp", pattern: str = "*.data") -> list[CaseResult]:
    """Run every file of directory ``path`` whose name matches ``pattern``, in name order.
    A file that does not parse is a failed case with the parse error as its reason."""
    check_engine(engine)
    results = []
    for file in sorted(p for p in Path(path).iterdir() if fnmatch.fnmatchcase(p.name, pattern)):
        try:
            case = load_data(file)
        except ConformanceFormatError as e:
            results.append(CaseResult(file.stem, False, None, None, str(e)))
            continue
        results.append(run_case(case, engine))
    return results
