"""Assembler and disassembler for BPF programs, in two dialects.

Sits on `pybpf.isa` (the opcode table and the instruction codec); used by the CLI
(``pybpf asm``/``pybpf disasm``), the conformance runner and tests. ``lark`` is imported only
in this package.

Conformance dialect (the bpf_conformance / uBPF text of ``-- asm`` sections)::

    mov32 %r0, 1            ldxw %r0, [%r1+4]        lock fetch add [%r10-8], %r1
    jne %r1, 0x5, fail      ja +3                    call local func1     call %r2
    lddw %r0, 0x1122334455667788                     exit

The mnemonic is the opcode table's row name (``add32``, ``ldxsw``, ``movsx832``, ``be16``,
``lock cmpxchg32``, ``ja32``...), plus the suite's aliases ``swap16/32/64`` (= ``bswap``) and
``call %rN`` (= ``callx``). Forms the suite never writes use the table name with its dot as
a space (the dotted name is accepted too): ``call kfunc 1234`` (``call kfunc 1234, 2`` with a
module BTF fd index in the offset field), ``lddw map_fd %r1, 3``, ``lddw map_value %r1, 3``,
``lddw btf_id``/``func``/``map_idx``/``map_idx_value``; legacy packet loads are
``ldabsw 12`` and ``ldindw %r1, 12`` (the register goes to src_reg). Immediates are
decimal or hex, signed or not: values in [-2**31, 2**32) are taken modulo 2**32
(``0xffffffff`` is -1); lddw takes [-2**63, 2**64). Jump and local-call targets are labels
or offsets relative to the next instruction (``+3``, ``-1``); pcs count 8-byte slots, an
lddw takes two. ``name:`` on its own line defines a label; a reference to ``exit`` that no
label defines means the first ``exit`` instruction. ``#`` starts a comment.

llvm dialect (``llvm-objdump -d`` for BPF, and the kernel verifier log)::

    r1 = 0x1234 ll          w0 += w1                 if w1 s> w2 goto +0x3
    r0 = *(u32 *)(r1 + 0x4) *(u64 *)(r10 - 0x8) = r1 lock *(u64 *)(r10 - 0x8) += r1
    r0 = atomic_fetch_add((u64 *)(r10 - 0x8), r0)    r0 = cmpxchg_64(r10 - 0x8, r0, r1)
    r1 = (s8)r2             r0 = be16 r0             gotol -0x5     callx r2

It also reads the kernel log's spellings (``(r10 -8)``, decimal numbers, ``goto pc+3``,
``call bpf_map_lookup_elem#1``, ``atomic64_fetch_add(...)``, ``atomic64_xchg(...)``,
``r0 = *(u16 *)skb[r1 + 2]``, lddw without ``ll`` when the line carries its ``(18)``
opcode or the value needs more than 32 bits), objdump's and the kernel's line prefixes
(``12:``, the hex bytes, ``(85)``, which is checked against the instruction),
objdump's ``<...>`` annotations after targets (skipped), function headers
``0000000000000000 <prog>:`` (labels), and labels as jump targets. Where objdump's text is
ambiguous the kernel's spelling is used and printed: ``call pc+3`` is a local call,
``call 0x1`` a helper call, ``call kernel-function#1234`` a kfunc call (a kfunc the kernel
log names, ``call bpf_obj_new_impl#1234``, reads as a helper call: the name alone cannot
tell). ``ld_pseudo r1, 0x1, 0x3`` is an lddw of the given kind (src_reg).
Comments start with ``;``, ``#`` or ``//``.
"""

from pybpf.asm.assembler import assemble, assemble_insns, detect_dialect
from pybpf.asm.disassembler import disassemble, format_insn
from pybpf.asm.parser import DIALECTS

__all__ = [
    "DIALECTS",
    "assemble",
    "assemble_insns",
    "detect_dialect",
    "disassemble",
    "format_insn",
]
