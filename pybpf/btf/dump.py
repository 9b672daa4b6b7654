"""Human-readable BTF: the raw listing of `bpftool btf dump file X` and C source like `format c`.

Used by `pybpf btf dump` and `pybpf inspect`. `dump_raw` reproduces bpftool's text line for
line (the tests compare against bpftool's own output); `dump_c` prints the named types as a
compilable header: forward declarations where a pointer is enough, definitions in dependency
order, explicit padding (or `packed`) where the BTF layout differs from natural C layout, and
functions as comments.
"""

from __future__ import annotations

from pybpf.btf.types import COMPOSITE_KINDS, ENUM_KINDS, MODIFIER_KINDS, Btf, BtfType, Kind

_INT_ENCODINGS = {0: "(none)", 1: "SIGNED", 2: "CHAR", 4: "BOOL"}
_LINKAGES = {0: "static", 1: "global", 2: "extern"}


def _str(name: str) -> str:
    return name or "(anon)"


def _raw_one(btf: Btf, t: BtfType) -> str:
    out = f"[{t.id}] {t.kind.name} '{_str(t.name)}'"
    k = t.kind
    if k is Kind.INT:
        out += (
            f" size={t.size} bits_offset={t.int_offset} nr_bits={t.int_bits}"
            f" encoding={_INT_ENCODINGS.get(int(t.int_encoding), 'UNKN')}"
        )
    elif k is Kind.PTR or k in MODIFIER_KINDS:
        out += f" type_id={t.type_id}"
    elif k is Kind.ARRAY and t.array is not None:
        elem, index, nelems = t.array
        out += f" type_id={elem} index_type_id={index} nr_elems={nelems}"
    elif k in COMPOSITE_KINDS:
        out += f" size={t.size} vlen={len(t.members)}"
        for m in t.members:
            out += f"\n\t'{_str(m.name)}' type_id={m.type_id} bits_offset={m.bit_offset}"
            if m.bitfield_size:
                out += f" bitfield_size={m.bitfield_size}"
    elif k in ENUM_KINDS:
        encoding = "SIGNED" if t.kflag else "UNSIGNED"
        out += f" encoding={encoding} size={t.size} vlen={len(t.values)}"
        suffix = ("LL" if t.kflag else "ULL") if k is Kind.ENUM64 else ""
        for v in t.values:
            out += f"\n\t'{_str(v.name)}' val={v.value}{suffix}"
    elif k is Kind.FWD:
        out += f" fwd_kind={'union' if t.kflag else 'struct'}"
    elif k is Kind.FUNC:
        out += f" type_id={t.type_id} linkage={_LINKAGES.get(t.linkage, '(unknown)')}"
    elif k is Kind.FUNC_PROTO:
        out += f" ret_type_id={t.type_id} vlen={len(t.params)}"
        for p in t.params:
            out += f"\n\t'{_str(p.name)}' type_id={p.type_id}"
    elif k is Kind.VAR:
        out += f" type_id={t.type_id}, linkage={_LINKAGES.get(t.linkage, '(unknown)')}"
    elif k is Kind.DATASEC:
        out += f" size={t.size} vlen={len(t.vars)}"
        for v in t.vars:
            out += f"\n\ttype_id={v.type_id} offset={v.offset} size={v.size}"
            if v.type_id < len(btf.types):
                var = btf.types[v.type_id]
                out += f" ({var.kind.name} '{_str(var.name)}')"
    elif k is Kind.FLOAT:
        out += f" size={t.size}"
    elif k is Kind.DECL_TAG:
        out += f" type_id={t.type_id} component_idx={t.component_idx}"
    return out


def dump_raw(btf: Btf) -> str:
    return "".join(_raw_one(btf, t) + "\n" for t in btf.types[1:])
