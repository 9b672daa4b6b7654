"""The kernel's printf subset for bpf_trace_printk and bpf_snprintf (bpf_bprintf_prepare).

Place in the pipeline: used by the helper implementations in :mod:`pybpf.helpers.core`. The
rules are the kernel's (kernel/bpf/helpers.c ``bpf_bprintf_prepare`` then ``bstr_printf``):

- ASCII control characters other than whitespace are rejected; ``%%`` prints ``%``;
- a conversion is ``%`` [flags ``0 + - space``] [width] then one of ``d i u x X`` (optionally
  ``l`` / ``ll``: 64-bit, else 32-bit), ``c``, ``s``, ``p`` (``%p``, ``%pK``, ``%px``, ``%ps``,
  ``%pS``, ``%pB``, ``%pks``, ``%pus``, ``%pI4``, ``%pi4``, ``%pI6``, ``%pi6``); anything else,
  a precision, or more conversions than arguments is -EINVAL;
- ``%s`` (and ``%pks`` / ``%pus``) must be followed by the end, whitespace or punctuation;
- arguments are first packed into a 512-byte buffer (strings copied in, bounded by the room
  left), so very long strings are cut and overflowing it is -ENOSPC;
- after any ``%p`` form, bstr_printf skips the alphanumeric characters that follow.

Pointers print as their raw value (the kernel hashes plain ``%p``; a deterministic runtime
prints what ``no_hash_pointers`` would), symbol forms as ``0x`` and 16 hex digits (no kallsyms).
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Sequence

MAX_BPRINTF_BIN_ARGS = 512
MAX_BPRINTF_BUF = 1024
MAX_BPRINTF_VARARGS = 12

_SPACE = frozenset(b" \t\n\v\f\r")
_PUNCT = frozenset(c for c in range(0x21, 0x7F) if not chr(c).isalnum())

ReadString = Callable[[int, int], bytes | None]
ReadMem = Callable[[int, int], bytes | None]


class _BadFormat(Exception):
    """Internal: the format is rejected with ``code`` (a negative errno)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _at(fmt: bytes, i: int) -> int:
    return fmt[i] if i < len(fmt) else 0


def _ends_word(c: int) -> bool:
    return c == 0 or c in _SPACE or c in _PUNCT


def _ip(raw: bytes, kind: str) -> str:
    if kind == "I4":
        return ".".join(str(b) for b in raw)
    if kind == "i4":
        return ".".join(f"{b:03d}" for b in raw)
    groups = [raw[i : i + 2].hex() for i in range(0, 16, 2)]
    return ":".join(groups) if kind == "I6" else "".join(groups)


def _pad(text: str, flags: str, width: int) -> str:
    if len(text) >= width:
        return text
    return text.ljust(width) if "-" in flags else text.rjust(width)


def _int(value: int, conv: str, bits: int, flags: str, width: int) -> str:
    mask = (1 << bits) - 1
    value &= mask
    if conv in "di":
        if value >> (bits - 1):
            value -= 1 << bits
        pyconv = "d"
    else:
        flags = flags.replace("+", "").replace(" ", "")
        pyconv = "d" if conv == "u" else conv
    return f"%{flags}{width or ''}{pyconv}" % value


def bprintf(
    fmt: bytes, args: Sequence[int], read_string: ReadString, read_mem: ReadMem
) -> bytes | int:
    """Format ``fmt`` (without its NUL) with the u64 ``args``: the full, untruncated text,
    or the negative errno the kernel returns for a rejected format.

    ``read_string(addr, limit)`` returns the string at ``addr`` with its NUL, at most
    ``limit`` bytes (a cut string ends in NUL), or None on a fault; ``read_mem(addr, n)``
    returns ``n`` bytes or None.
    """
    try:
        return _format(fmt, args, read_string, read_mem)
    except _BadFormat as e:
        return e.code


def _format(fmt: bytes, args: Sequence[int], read_string: ReadString, read_mem: ReadMem) -> bytes:
    einval = _BadFormat(-errno.EINVAL)
    enospc = _BadFormat(-errno.ENOSPC)
    num_args = len(args)
    out: list[str] = []
    used = 0  # bytes of the kernel's bin_args buffer consumed so far
    num_spec = 0
    i = 0
    n = len(fmt)

    def take(size: int, align: bool = True) -> None:
        nonlocal used
        if align:
            used = (used + 3) & -4
        if MAX_BPRINTF_BIN_ARGS - used < size:
            raise enospc
        used += size

    while i < n:
        c = fmt[i]
        if c < 0x80 and not (0x20 <= c < 0x7F) and c not in _SPACE:
            raise einval
        if c != 0x25:  # '%'
            out.append(chr(c))
            i += 1
            continue
        if _at(fmt, i + 1) == 0x25:
            out.append("%")
            i += 2
            continue
        if num_spec >= num_args:
            raise einval
        i += 1
        if _at(fmt, i) >= 0x80:
            raise einval
        start = i
        while _at(fmt, i) in b"0+- ":
            i += 1
        flags = fmt[start:i].decode()
        wstart = i
        if 0x31 <= _at(fmt, i) <= 0x39:
            i += 1
            while 0x30 <= _at(fmt, i) <= 0x39:
                i += 1
        width = int(fmt[wstart:i]) if i > wstart else 0
        arg = args[num_spec] & ((1 << 64) - 1)
        conv = chr(_at(fmt, i))
        if conv == "p":
            nxt = _at(fmt, i + 1)
            if _ends_word(nxt):
                take(8)
                text = "(null)" if arg == 0 else f"{arg:016x}"
                out.append(_pad(text, flags, width) if width else text)
                i += 1
            elif nxt in b"ku" and _at(fmt, i + 2) == 0x73:
                i += 2
                text, size = _string(fmt, i, arg, used, read_string, einval, enospc)
                used += size
                out.append(_pad(text, flags, width))
                i += 1
            elif nxt in b"KxsS":
                take(8)
                if nxt == 0x78:  # 'x'
                    text = f"{arg:016x}"
                elif nxt == 0x4B:  # 'K'
                    text = "(null)" if arg == 0 else f"{arg:016x}"
                else:
                    text = f"0x{arg:016x}"
                out.append(_pad(text, flags, width) if width else text)
                i += 2
            elif nxt == 0x42:  # 'B'
                text = f"0x{arg:016x}"
                used += len(text) + 1
                out.append(text)
                i += 2
            elif nxt in b"iI" and _at(fmt, i + 2) in b"46":
                kind = chr(nxt) + chr(_at(fmt, i + 2))
                size = 4 if kind[1] == "4" else 16
                if MAX_BPRINTF_BIN_ARGS - used < size:
                    raise enospc
                raw = read_mem(arg, size) or bytes(size)
                text = _ip(raw, kind)
                room = MAX_BPRINTF_BIN_ARGS - used
                stored = text[: room - 1]
                used += len(text) + 1
                out.append(_pad(stored, flags, width) if width else stored)
                i += 3
            else:
                raise einval
            while i < n and chr(fmt[i]).isascii() and chr(fmt[i]).isalnum():
                i += 1
            num_spec += 1
            continue
        if conv == "s":
            text, size = _string(fmt, i, arg, used, read_string, einval, enospc)
            used += size
            out.append(_pad(text, flags, width))
            i += 1
            num_spec += 1
            continue
        if conv == "c":
            take(1, align=False)
            out.append(_pad(chr(arg & 0xFF), flags, width))
            i += 1
            num_spec += 1
            continue
        bits = 32
        if conv == "l":
            bits = 64
            i += 1
            if _at(fmt, i) == 0x6C:
                i += 1
            conv = chr(_at(fmt, i))
        if conv not in "iduxX":
            raise einval
        take(bits // 8)
        out.append(_int(arg, conv, bits, flags, width))
        i += 1
        num_spec += 1
    return "".join(out).encode("latin-1")


def _string(
    fmt: bytes,
    i: int,
    addr: int,
    used: int,
    read_string: ReadString,
    einval: _BadFormat,
    enospc: _BadFormat,
) -> tuple[str, int]:
    """The string for a ``%s``-like conversion and the bin_args bytes its copy takes."""
    if not _ends_word(_at(fmt, i + 1)):
        raise einval
    room = MAX_BPRINTF_BIN_ARGS - used
    if room <= 0:
        raise enospc
    raw = read_string(addr, room)
    if raw is None:
        return "", 1
    return raw[:-1].decode("latin-1"), len(raw)
