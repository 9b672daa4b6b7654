"""Human-readable BTF: the raw listing of `bpftool btf dump file X` and C source like `format c`.

Used by `pybpf btf dump` and `pybpf inspect`. `dump_raw` reproduces bpftool's text line for
line (the tests compare against bpftool's own output); `dump_c` prints the named types as a
compilable header: forward declarations where a pointer is enough, definitions in dependency
order, explicit padding (or `packed`) where the BTF layout differs from natural C layout, and
functions as comments.
"""

from __future__ import annotations

from pybpf.btf.cdecl import declaration, plain_base_name
from pybpf.btf.types import (
    COMPOSITE_KINDS,
    ENUM_KINDS,
    MAX_DEPTH,
    MODIFIER_KINDS,
    Btf,
    BtfType,
    Kind,
    Member,
)
from pybpf.errors import BtfError

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


class _CWriter:
    """Emits named types in dependency order (libbpf's btf_dump ordering, simplified).

    A type used by value must be complete before its user; behind a pointer a forward
    declaration suffices. Anonymous structs/unions/enums are printed inline at their use.
    """

    def __init__(self, btf: Btf) -> None:
        self.btf = btf
        self.out: list[str] = []
        self.done: set[int] = set()
        self.declared: set[int] = set()
        self.visiting: set[int] = set()
        self.names = self._unique_names()

    def _unique_names(self) -> dict[int, str]:
        """C spelling per type id; a second type with the same tag name gets `___2` (as bpftool)."""
        seen: dict[tuple[str, str], int] = {}
        names: dict[int, str] = {}
        for t in self.btf.types:
            if not t.name or t.kind not in _NAMESPACES:
                continue
            key = (_NAMESPACES[t.kind], t.name)
            if t.kind is Kind.FWD:
                names[t.id] = t.name
                continue
            seen[key] = seen.get(key, 0) + 1
            names[t.id] = t.name if seen[key] == 1 else f"{t.name}___{seen[key]}"
        return names

    def base_name(self, t: BtfType, indent: int) -> str:
        if t.kind in COMPOSITE_KINDS or t.kind in ENUM_KINDS:
            keyword = "union" if t.kind is Kind.UNION else t.kind.name.lower().rstrip("64")
            if t.name:
                return f"{keyword} {self.names.get(t.id, t.name)}"
            return f"{keyword} {self.body(t, indent)}"
        if t.kind is Kind.TYPEDEF:
            return self.names.get(t.id, t.name)
        return plain_base_name(t)

    def decl(self, type_id: int, name: str, indent: int) -> str:
        return declaration(self.btf, type_id, name, lambda t: self.base_name(t, indent))

    def body(self, t: BtfType, indent: int) -> str:
        pad = "\t" * (indent + 1)
        if t.kind in ENUM_KINDS:
            lines = [f"{pad}{v.name} = {_enum_literal(t, v.value)}," for v in t.values]
            return "{\n" + "\n".join(lines) + "\n" + "\t" * indent + "}"
        lines = []
        pos = 0
        packed = self.btf.align_of(t.id) == 1 and any(
            self.btf.align_of(m.type_id) > 1 for m in t.members
        )
        for m in t.members:
            if t.kind is Kind.STRUCT and m.bit_offset != self._natural(pos, m, packed):
                lines.extend(f"{pad}{filler};" for filler in _padding(pos, m.bit_offset))
            text = self.decl(m.type_id, m.name, indent + 1)
            if m.bitfield_size:
                text += f": {m.bitfield_size}"
            lines.append(f"{pad}{text};")
            end = m.bit_offset + (m.bitfield_size or 8 * self._size(m.type_id))
            pos = max(pos, end) if t.kind is Kind.STRUCT else 0
        if t.kind is Kind.STRUCT:
            align = 1 if packed else self.btf.align_of(t.id)
            natural = -(-pos // (8 * align)) * 8 * align
            if 8 * t.size > natural:
                lines.extend(f"{pad}{filler};" for filler in _padding(pos, 8 * t.size))
        text = "{\n" + "".join(line + "\n" for line in lines) + "\t" * indent + "}"
        return text + (" __attribute__((packed))" if packed else "")

    def _natural(self, pos: int, m: Member, packed: bool) -> int:
        """Where a C compiler would place member `m` after bit `pos`."""
        if packed:
            return pos if m.bitfield_size else -(-pos // 8) * 8
        if m.bitfield_size:
            unit = 8 * self._size(m.type_id)
            if unit and pos % unit + m.bitfield_size > unit:
                return -(-pos // unit) * unit
            return pos
        align = 8 * self.btf.align_of(m.type_id)
        return -(-pos // align) * align

    def _size(self, type_id: int) -> int:
        t = self.btf.resolve(type_id)
        if t.kind is Kind.ARRAY and t.array is not None and t.array[2] == 0:
            return 0
        return self.btf.size_of(type_id)

    def need(self, type_id: int, strong: bool, depth: int = 0) -> None:
        """Make `type_id` usable: complete if `strong`, at least declared otherwise."""
        if depth > 4 * MAX_DEPTH:
            raise BtfError(f"type [{type_id}] nests too deeply to print", section=self.btf.section)
        t = self.btf[type_id]
        k = t.kind
        deeper = depth + 1
        if t.id in self.visiting:
            return
        if k is Kind.PTR:
            self.need(t.type_id, False, deeper)
        elif k in MODIFIER_KINDS and k is not Kind.TYPEDEF:
            self.need(t.type_id, strong, deeper)
        elif k is Kind.ARRAY and t.array is not None:
            self.need(t.array[0], strong, deeper)
        elif k is Kind.FUNC_PROTO:
            for ref in (t.type_id, *(p.type_id for p in t.params)):
                self.need(ref, strong, deeper)
        elif k is Kind.TYPEDEF:
            self.visiting.add(t.id)
            self.need(t.type_id, strong, deeper)
            self.visiting.discard(t.id)
            if t.id not in self.done:
                self.done.add(t.id)
                self.out.append(
                    f"typedef {self.decl(t.type_id, self.names.get(t.id, t.name), 0)};\n\n"
                )
        elif k in COMPOSITE_KINDS:
            if t.id in self.done:
                return
            if t.name and not strong:
                if t.id not in self.declared:
                    self.declared.add(t.id)
                    self.out.append(f"{self.base_name(t, 0)};\n\n")
                return
            self.visiting.add(t.id)
            for m in t.members:
                self.need(m.type_id, True, deeper)
            self.visiting.discard(t.id)
            if t.name:
                self.done.add(t.id)
                self.out.append(f"{self.base_name(t, 0)} {self.body(t, 0)};\n\n")
        elif k in ENUM_KINDS and t.name and t.id not in self.done:
            self.done.add(t.id)
            self.out.append(f"{self.base_name(t, 0)} {self.body(t, 0)};\n\n")
        elif k is Kind.FWD and t.id not in self.declared:
            self.declared.add(t.id)
            self.out.append(f"{plain_base_name(t)};\n\n")

    def write(self) -> str:
        referenced = {r for t in self.btf.types for r in t.refs() if t.kind is not Kind.DATASEC}
        for t in self.btf.types:
            if t.kind in ENUM_KINDS and not t.name and t.id not in referenced:
                self.out.append(f"enum {self.body(t, 0)};\n\n")
            elif t.name and (
                t.kind in COMPOSITE_KINDS or t.kind in ENUM_KINDS or t.kind is Kind.TYPEDEF
            ):
                self.need(t.id, True)
            elif t.kind is Kind.FWD:
                self.need(t.id, False)
        funcs = [t for t in self.btf.types if t.kind is Kind.FUNC]
        if funcs:
            self.out.append("/* functions:\n")
            for f in funcs:
                linkage = _LINKAGES.get(f.linkage, "(unknown)")
                self.out.append(f" * {linkage} {self.decl(f.type_id, f.name, 0)};\n")
            self.out.append(" */\n\n")
        return "".join(self.out)


_NAMESPACES = {
    Kind.STRUCT: "tag",
    Kind.UNION: "tag",
    Kind.ENUM: "tag",
    Kind.ENUM64: "tag",
    Kind.FWD: "tag",
    Kind.TYPEDEF: "ident",
}
_PAD_TYPES = ((64, "long"), (32, "int"), (16, "short"), (8, "char"))


def _padding(pos: int, target: int) -> list[str]:
    """Unnamed bitfields that move from bit `pos` to bit `target` without crossing units.

    Long runs of whole words become one named `long` array so a huge gap stays one line.
    """
    out = []
    while pos < target:
        words = (target - pos) // 64
        if pos % 64 == 0 and words > 4:
            out.append(f"long __pad_{pos // 8}[{words}]")
            pos += 64 * words
            continue
        for bits, name in _PAD_TYPES:
            if pos % bits == 0 and target - pos >= bits:
                out.append(f"{name}: {bits}")
                pos += bits
                break
        else:
            step = min(target - pos, 8 - pos % 8)
            out.append(f"char: {step}")
            pos += step
    return out


def _enum_literal(t: BtfType, value: int) -> str:
    if t.kind is Kind.ENUM64:
        return f"{value}LL" if t.kflag else f"{value}ULL"
    return str(value)


def dump_c(btf: Btf) -> str:
    header = "/* BTF types in C syntax (pybpf) */\n\n"
    return header + _CWriter(btf).write()
