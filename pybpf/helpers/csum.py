"""Internet-checksum arithmetic exactly as the x86-64 kernel computes it.

Place in the pipeline: used by the skb checksum helpers (l3/l4_csum_replace, csum_diff) in
:mod:`pybpf.helpers.net`. Values are handled as the kernel's registers hold them: a ``__sum16``
or ``__be16`` / ``__be32`` loaded from packet memory is the little-endian integer of those
bytes, and one's-complement sums are byte-order independent as long as every operand is
loaded the same way.

``csum_partial`` returns the unfolded 32-bit ``__wsum``. Its exact value (not just its folded
16-bit form) is architecture specific; x86-64 adds 64-bit little-endian words with
end-around carry and folds once to 32 bits, which for non-negative words is: 0 when the
plain sum is 0, else ``(sum - 1) % 0xffffffff + 1`` of the 32-bit little-endian words plus
the seed.
"""

from __future__ import annotations

_M32 = 0xFFFFFFFF


def add32(a: int, b: int) -> int:
    """csum_add: 32-bit addition with end-around carry."""
    s = (a & _M32) + (b & _M32)
    return (s & _M32) + (s >> 32)


def csum_partial(data: bytes, seed: int) -> int:
    """The x86-64 kernel's csum_partial over ``data`` starting from ``seed`` (a __wsum)."""
    padded = data + b"\0" * (-len(data) % 4)
    total = (seed & _M32) + sum(
        int.from_bytes(padded[i : i + 4], "little") for i in range(0, len(padded), 4)
    )
    return 0 if total == 0 else (total - 1) % _M32 + 1


def csum_sub(a: int, b: int) -> int:
    """csum_sub: ``a`` plus the complement of ``b``, with end-around carry."""
    return add32(a, ~b & _M32)


def csum_from32to16(wsum: int) -> int:
    """Fold a 32-bit __wsum to its 16-bit one's-complement sum, not complemented (the value
    bpf_csum_diff returns since Linux 6.12)."""
    s = wsum & _M32
    s = (s + ((s >> 16) | (s << 16))) & _M32
    return s >> 16


def csum_fold(wsum: int) -> int:
    """Fold a 32-bit __wsum to 16 bits and complement it (the __sum16 to store)."""
    s = wsum & _M32
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def csum_unfold(sum16: int) -> int:
    return sum16 & 0xFFFF


def csum_replace_by_diff(sum16: int, diff: int) -> int:
    return csum_fold(add32(diff, ~csum_unfold(sum16) & _M32))


def csum_replace4(sum16: int, old: int, new: int) -> int:
    return csum_fold(add32(add32(~csum_unfold(sum16) & _M32, ~old & _M32), new))


def csum16_add(csum: int, addend: int) -> int:
    res = (csum + addend) & 0xFFFF
    return (res + (res < (addend & 0xFFFF))) & 0xFFFF


def csum_replace2(sum16: int, old: int, new: int) -> int:
    return ~csum16_add(csum16_add(~sum16 & 0xFFFF, ~old & 0xFFFF), new & 0xFFFF) & 0xFFFF
