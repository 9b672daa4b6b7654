"""Maps of an object: BTF-defined `.maps`, legacy `maps`, global data, `.kconfig`, struct_ops.

A step of `load_spec`, after functions and externs are known and before programs are laid
out (their lddw relocations name these maps). Follows libbpf: BTF map definitions are read
from the `.maps` DATASEC (``__uint``/``__type``/``__array`` members), each non-empty `.data*`,
`.rodata*` and `.bss*` section becomes an internal single-entry ARRAY map named like libbpf
names it, and ring buffer sizes are rounded up to what the kernel accepts. After programs are
built, `collect_data_relocations` reads the relocations of `.maps` (initial prog-array and
map-in-map slots) and of the struct_ops sections (which program each member points to).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

from pybpf.btf import BtfType, Kind, Linkage, VarSecInfo
from pybpf.errors import LoadError, RelocationError
from pybpf.loader.context import INSN_SIZE, Context
from pybpf.loader.elf import SHT_NOBITS, SHT_PROGBITS, STT_SECTION, Rel, Section, Symbol
from pybpf.loader.spec import MapSpec, ObjectSpec, StructOpsSpec
from pybpf.uapi import BPF_OBJ_NAME_LEN, BpfMapType, BpfProgType, MapFlag

PAGE_SIZE = 4096  # x86-64, the platform whose kernel pybpf follows
STRUCT_OPS_SECTIONS = (".struct_ops", ".struct_ops.link", "?.struct_ops", "?.struct_ops.link")
_LEGACY_FIELDS = ("type", "key_size", "value_size", "max_entries", "map_flags", "inner", "numa")
_MAP_IN_MAP = (BpfMapType.ARRAY_OF_MAPS, BpfMapType.HASH_OF_MAPS)
_U32_MAX = 0xFFFFFFFF


def adjust_ringbuf_size(size: int) -> int:
    """libbpf's adjust_ringbuf_sz: the smallest page_size * 2**k >= size (0 stays 0)."""
    if size == 0:
        return 0
    if size % PAGE_SIZE == 0 and (size // PAGE_SIZE) & (size // PAGE_SIZE - 1) == 0:
        return size
    mul = 1
    while mul <= _U32_MAX // PAGE_SIZE:
        if mul * PAGE_SIZE > size:
            return mul * PAGE_SIZE
        mul <<= 1
    return size


def internal_map_name(obj_name: str, real_name: str) -> str:
    """libbpf's internal_map_name: as much of the object name as fits before the section
    name (7 characters reserved for it), none for custom ``.data.x``-style sections."""
    sfx_len = min(max(7, len(real_name)), BPF_OBJ_NAME_LEN - 1)
    pfx_len = 0 if "." in real_name[1:] else min(BPF_OBJ_NAME_LEN - sfx_len - 1, len(obj_name))
    name = obj_name[:pfx_len] + real_name[:sfx_len]
    return "".join(c if c.isascii() and (c.isalnum() or c in "_.") else "_" for c in name)


def collect_maps(ctx: Context, spec: ObjectSpec) -> None:
    _legacy_maps(ctx, spec)
    _btf_maps(ctx, spec)
    _global_data_maps(ctx, spec)
    _kconfig_map(ctx, spec)
    _struct_ops(ctx, spec)


def _add(spec: ObjectSpec, ctx: Context, m: MapSpec, section: str) -> None:
    if m.name in spec.maps:
        raise LoadError("duplicate map name", path=ctx.path, section=section, symbol=m.name)
    spec.maps[m.name] = m


def _legacy_maps(ctx: Context, spec: ObjectSpec) -> None:
    sec = ctx.elf.by_name("maps")
    if sec is None or sec.type != SHT_PROGBITS:
        return
    syms = sorted(
        (s for s in ctx.elf.symbols if s.shndx == sec.index and s.type != STT_SECTION and s.name),
        key=lambda s: s.value,
    )
    if not syms or sec.size % len(syms):
        raise LoadError(
            f"{len(syms)} map symbols do not divide the section's {sec.size} bytes",
            path=ctx.path,
            section="maps",
        )
    def_size = sec.size // len(syms)
    if def_size < 4 * 5:
        raise LoadError(f"map definitions of {def_size} bytes are too short", section="maps")
    for sym in syms:
        where = {"path": ctx.path, "section": "maps", "symbol": sym.name, "offset": sym.value}
        if sym.value % 4 or sym.value + def_size > sec.size:
            raise LoadError("map definition outside the section", **where)
        raw = sec.data[sym.value : sym.value + def_size]
        known = min(def_size, 4 * len(_LEGACY_FIELDS))
        if any(raw[known:]):
            raise LoadError("map definition has unknown non-zero fields", **where)
        values = dict(zip(_LEGACY_FIELDS, struct.unpack_from(f"<{known // 4}I", raw), strict=False))
        m = MapSpec(
            name=sym.name,
            type=_map_type(values["type"], where),
            key_size=values["key_size"],
            value_size=values["value_size"],
            max_entries=values["max_entries"],
            map_flags=values["map_flags"],
            numa_node=values.get("numa", 0),
            section="maps",
        )
        _finish(m)
        _add(spec, ctx, m, "maps")
        ctx.map_defs[(sec.index, sym.value)] = m.name


def _map_type(value: int, where: dict) -> BpfMapType:
    if value == 0:
        raise LoadError("map type isn't specified", **where)
    try:
        return BpfMapType(value)
    except ValueError as e:
        raise LoadError(f"unknown map type {value}", **where) from e


def _finish(m: MapSpec) -> None:
    if m.type in (BpfMapType.RINGBUF, BpfMapType.USER_RINGBUF):
        m.max_entries = adjust_ringbuf_size(m.max_entries)


def _btf_maps(ctx: Context, spec: ObjectSpec) -> None:
    sec = ctx.elf.by_name(".maps")
    if sec is None:
        return
    btf = ctx.btf
    datasec = btf.datasec(".maps") if btf is not None else None
    if btf is None or datasec is None:
        raise LoadError(
            "BTF-defined maps need a .maps DATASEC in .BTF", path=ctx.path, section=".maps"
        )
    for vi in datasec.vars:
        var = btf[vi.type_id]
        where = {"path": ctx.path, "section": ".maps", "symbol": var.name, "offset": vi.offset}
        if not var.name:
            raise LoadError("map with an empty name", **where)
        if vi.offset + vi.size > sec.size:
            raise LoadError("map definition overruns the .maps section", **where)
        if var.kind is not Kind.VAR:
            raise LoadError(f"unexpected {var.kind.name} in the .maps DATASEC", **where)
        if var.linkage != Linkage.GLOBAL:
            raise LoadError("map definitions must be global variables", **where)
        definition = btf.resolve(var.type_id)
        if definition.kind is not Kind.STRUCT or definition.size > vi.size:
            raise LoadError("map definition is not a struct of the variable's size", **where)
        m = _parse_def(ctx, var.name, definition, where, inner_allowed=True)
        m.section = ".maps"
        _add(spec, ctx, m, ".maps")
        ctx.map_defs[(sec.index, vi.offset)] = m.name


def _field_int(ctx: Context, member_type: int, field: str, where: dict) -> int:
    btf = ctx.btf
    t = btf.resolve(member_type)
    if t.kind is not Kind.PTR:
        raise LoadError(f"map attribute {field!r} is not a pointer to an array", **where)
    arr = btf[t.type_id]
    if arr.kind is not Kind.ARRAY or arr.array is None:
        raise LoadError(f"map attribute {field!r} is not a pointer to an array", **where)
    return arr.array[2]


def _field_long(ctx: Context, member_type: int, field: str, where: dict) -> int:
    t = ctx.btf.resolve(member_type)
    if t.kind is Kind.PTR:
        return _field_int(ctx, member_type, field, where)
    if t.kind not in (Kind.ENUM, Kind.ENUM64) or len(t.values) != 1:
        raise LoadError(f"map attribute {field!r} is not __uint or __ulong", **where)
    return t.values[0].value & 0xFFFFFFFFFFFFFFFF


def _sized_type(ctx: Context, member_type: int, field: str, where: dict) -> tuple[int, int]:
    btf = ctx.btf
    t = btf[member_type]
    if t.kind is not Kind.PTR:
        raise LoadError(f"map {field} spec is not a pointer ({t.kind.name})", **where)
    return t.type_id, btf.size_of(t.type_id)


def _parse_def(
    ctx: Context, name: str, definition: BtfType, where: dict, *, inner_allowed: bool
) -> MapSpec:
    values: dict[str, int] = {}
    key_type = value_type = 0
    inner: MapSpec | None = None
    for index, member in enumerate(definition.members):
        field = member.name
        if field in ("type", "max_entries", "map_flags", "numa_node", "key_size", "value_size"):
            value = _field_int(ctx, member.type_id, field, where)
            values[field] = value
        elif field in ("key", "value"):
            type_id, size = _sized_type(ctx, member.type_id, field, where)
            values[f"{field}_size_t"] = size
            if field == "key":
                key_type = type_id
            else:
                value_type = type_id
        elif field == "values":
            inner = _values(ctx, name, member.type_id, values, where, inner_allowed)
            if index != len(definition.members) - 1:
                raise LoadError("'values' must be the last member of a map definition", **where)
            values["values"] = 1
        elif field == "pinning":
            if not inner_allowed:
                raise LoadError("an inner map cannot be pinned", **where)
            values["pinning"] = _field_int(ctx, member.type_id, field, where)
            if values["pinning"] not in (0, 1):
                raise LoadError(f"invalid pinning value {values['pinning']}", **where)
        elif field == "map_extra":
            values["map_extra"] = _field_long(ctx, member.type_id, field, where)
        else:
            raise LoadError(f"unknown map definition field {field!r}", **where)
    for kind in ("key", "value"):
        size_field, typed = f"{kind}_size", f"{kind}_size_t"
        if size_field in values and typed in values and values[size_field] != values[typed]:
            raise LoadError(
                f"conflicting {kind} size {values[size_field]} != {values[typed]}", **where
            )
    if "values" in values and values.get("value_size", 4) != 4:
        raise LoadError(f"conflicting value size {values['value_size']} != 4", **where)
    map_type = _map_type(values.get("type", 0), where)
    m = MapSpec(
        name=name,
        type=map_type,
        key_size=values.get("key_size", values.get("key_size_t", 0)),
        value_size=4
        if "values" in values
        else values.get("value_size", values.get("value_size_t", 0)),
        max_entries=values.get("max_entries", 0),
        map_flags=values.get("map_flags", 0),
        numa_node=values.get("numa_node", 0),
        pinning=values.get("pinning", 0),
        map_extra=values.get("map_extra", 0),
        key_type_id=key_type,
        value_type_id=value_type,
        inner=inner,
    )
    if inner is None and "values" in values and map_type in _MAP_IN_MAP:
        raise LoadError("map-in-map without an inner map definition", **where)
    _finish(m)
    return m


def _values(
    ctx: Context, name: str, type_id: int, values: dict, where: dict, inner_allowed: bool
) -> MapSpec | None:
    btf = ctx.btf
    if not inner_allowed:
        raise LoadError("multi-level inner maps are not supported", **where)
    map_type = values.get("type", 0)
    is_prog_array = map_type == BpfMapType.PROG_ARRAY
    if map_type not in _MAP_IN_MAP and not is_prog_array:
        raise LoadError("'values' needs a map-in-map or prog-array map type", **where)
    arr = btf[type_id]
    if arr.kind is not Kind.ARRAY or arr.array is None or arr.array[2]:
        raise LoadError("'values' is not a zero-sized array", **where)
    ptr = btf.resolve(arr.array[0])
    if ptr.kind is not Kind.PTR:
        raise LoadError(f"'values' element is a {ptr.kind.name}, not a pointer", **where)
    target = btf.resolve(ptr.type_id)
    if is_prog_array:
        if target.kind is not Kind.FUNC_PROTO:
            raise LoadError("prog-array 'values' must point to functions", **where)
        return None
    if target.kind is not Kind.STRUCT:
        raise LoadError("map-in-map 'values' must point to a map definition struct", **where)
    inner = _parse_def(ctx, f"{name}.inner", target, where, inner_allowed=False)
    inner.section = ".maps"
    return inner


def _global_data_maps(ctx: Context, spec: ObjectSpec) -> None:
    btf = ctx.btf
    for sec in ctx.elf.sections:
        kind = _data_kind(sec)
        if kind is None or not sec.size:
            continue
        datasec = btf.datasec(sec.name) if btf is not None else None
        flags = MapFlag.BPF_F_RDONLY_PROG if kind == "rodata" else MapFlag(0)
        if datasec is not None and any(
            btf[v.type_id].kind is Kind.VAR and btf[v.type_id].linkage != Linkage.STATIC
            for v in datasec.vars
        ):
            flags |= MapFlag.BPF_F_MMAPABLE
        m = MapSpec(
            name=internal_map_name(ctx.name, sec.name),
            type=BpfMapType.ARRAY,
            key_size=4,
            value_size=sec.size,
            max_entries=1,
            map_flags=int(flags),
            value_type_id=datasec.id if datasec is not None else 0,
            data=None if kind == "bss" else ctx.section_data(sec.index),
            section=sec.name,
            internal=kind,
            real_name=sec.name,
        )
        _add(spec, ctx, m, sec.name)
        ctx.data_maps[sec.index] = m.name


def _data_kind(sec: Section) -> str | None:
    def named(stem: str) -> bool:
        return sec.name == stem or sec.name.startswith(stem + ".")

    if sec.type == SHT_PROGBITS and not sec.executable:
        if named(".data"):
            return "data"
        if named(".rodata"):
            return "rodata"
    if sec.type == SHT_NOBITS and named(".bss"):
        return "bss"
    return None


def _kconfig_map(ctx: Context, spec: ObjectSpec) -> None:
    kconfig = [e for e in spec.externs.values() if e.kind == "kconfig"]
    if not kconfig:
        return
    size = max(e.offset + e.size for e in kconfig)
    datasec = ctx.btf.datasec(".kconfig") if ctx.btf is not None else None
    m = MapSpec(
        name=internal_map_name(ctx.name, ".kconfig"),
        type=BpfMapType.ARRAY,
        key_size=4,
        value_size=size,
        max_entries=1,
        map_flags=int(MapFlag.BPF_F_RDONLY_PROG | MapFlag.BPF_F_MMAPABLE),
        value_type_id=datasec.id if datasec is not None else 0,
        data=bytes(size),
        section=".kconfig",
        internal="kconfig",
        real_name=".kconfig",
    )
    _add(spec, ctx, m, ".kconfig")
    ctx.kconfig_map = m.name


def _struct_ops(ctx: Context, spec: ObjectSpec) -> None:
    # In section order, as libbpf creates the struct_ops maps.
    for sec in ctx.elf.sections:
        sec_name = sec.name
        if sec_name not in STRUCT_OPS_SECTIONS:
            continue
        btf = ctx.btf
        datasec = btf.datasec(sec_name) if btf is not None else None
        if btf is None or datasec is None:
            raise LoadError("struct_ops needs its DATASEC in .BTF", path=ctx.path, section=sec_name)
        bare = sec_name.removeprefix("?")
        for vi in datasec.vars:
            var = btf[vi.type_id]
            t = btf.resolve(var.type_id)
            where = {"path": ctx.path, "section": sec_name, "symbol": var.name, "offset": vi.offset}
            if t.kind is not Kind.STRUCT or not t.name:
                raise LoadError("struct_ops variable is not of a named struct type", **where)
            if vi.offset + t.size > sec.size:
                raise LoadError("struct_ops variable overruns its section", **where)
            if var.name in spec.struct_ops:
                raise LoadError("duplicate struct_ops variable", **where)
            spec.struct_ops[var.name] = StructOpsSpec(
                name=var.name,
                type_name=t.name,
                type_id=t.id,
                size=t.size,
                data=ctx.section_data(sec.index)[vi.offset : vi.offset + t.size],
                members={},
                link=bare == ".struct_ops.link",
                section=bare,
                autocreate=not sec_name.startswith("?"),
            )


def collect_data_relocations(ctx: Context, spec: ObjectSpec) -> None:
    """Relocations inside `.maps` and the struct_ops sections (function/map pointers)."""
    elf = ctx.elf
    for rel_sec in elf.sections:
        if rel_sec.index not in elf.relocations:
            continue
        target = elf.section(rel_sec.info)
        if target is None:
            continue
        if target.name == ".maps":
            _map_slots(ctx, spec, rel_sec, target)
        elif target.name in STRUCT_OPS_SECTIONS:
            _struct_ops_members(ctx, spec, rel_sec, target)


def _pointer_relocations(
    ctx: Context, rel_sec: Section, sec: Section, what: str
) -> Iterator[tuple[Rel, Symbol, dict[str, Any], VarSecInfo]]:
    """Each 8-byte pointer relocation of a BTF-described data section (``.maps`` initial
    values, ``.struct_ops`` function pointers) with its symbol, the error location, and the
    section variable (``what``) holding the pointer."""
    btf = ctx.btf
    datasec = btf.datasec(sec.name) if btf is not None else None
    if datasec is None:
        raise RelocationError(
            f"relocations in {sec.name} without BTF", path=ctx.path, section=rel_sec.name
        )
    for rel in ctx.elf.relocations[rel_sec.index]:
        sym = ctx.relocation_symbol(rel_sec, rel)
        where = {"path": ctx.path, "section": rel_sec.name, "symbol": sym.name, "offset": rel.at}
        holder = next(
            (
                v
                for v in datasec.vars
                if v.offset <= rel.offset and rel.offset + 8 <= v.offset + v.size
            ),
            None,
        )
        if holder is None:
            raise RelocationError(f"no {what} at {sec.name} offset {rel.offset:#x}", **where)
        yield rel, sym, where, holder


def _map_slots(ctx: Context, spec: ObjectSpec, rel_sec: Section, maps_sec: Section) -> None:
    btf = ctx.btf
    for rel, sym, where, vi in _pointer_relocations(ctx, rel_sec, maps_sec, "map"):
        m = spec.maps[btf[vi.type_id].name]
        if m.type in _MAP_IN_MAP:
            if sym.shndx != maps_sec.index or sym.name not in spec.maps:
                raise RelocationError(f"{sym.name!r} is not a BTF-defined map", **where)
            if m.type is BpfMapType.HASH_OF_MAPS and m.key_size != 4:
                raise RelocationError("hash-of-maps with initial values needs 4-byte keys", **where)
        elif m.type is BpfMapType.PROG_ARRAY:
            prog = ctx.program_named(sym.name)
            if prog is None or prog.section_index != sym.shndx or prog.start * 8 != sym.value:
                raise RelocationError(f"{sym.name!r} is not an entry-point program", **where)
        else:
            raise RelocationError(f"map {m.name!r} cannot hold map or program references", **where)
        definition = btf.resolve(btf[vi.type_id].type_id)
        last = definition.members[-1] if definition.members else None
        if last is None or last.name != "values":
            raise RelocationError(f"map {m.name!r} has no 'values' member", **where)
        moff = rel.offset - vi.offset - last.bit_offset // 8
        if moff < 0 or moff % 8:
            raise RelocationError(f"relocation at {rel.offset:#x} is not a 'values' slot", **where)
        # No max_entries check, as libbpf: the slot is the key the map is updated with after
        # creation, so a hash-of-maps takes any key and an array refuses a slot past its end
        # (E2BIG) only then.
        m.init_slots[moff // 8] = sym.name


def _struct_ops_members(ctx: Context, spec: ObjectSpec, rel_sec: Section, sec: Section) -> None:
    btf = ctx.btf
    for rel, sym, where, vi in _pointer_relocations(ctx, rel_sec, sec, "struct_ops variable"):
        ops = spec.struct_ops[btf[vi.type_id].name]
        t = btf[ops.type_id]
        moff = rel.offset - vi.offset
        member = next((m for m in t.members if m.bit_offset == moff * 8), None)
        if member is None:
            raise RelocationError(f"no member of {t.name} at offset {moff}", **where)
        ptr = btf.resolve(member.type_id)
        if ptr.kind is not Kind.PTR or btf.resolve(ptr.type_id).kind is not Kind.FUNC_PROTO:
            raise RelocationError(f"member {member.name!r} is not a function pointer", **where)
        if sym.value % INSN_SIZE:
            raise RelocationError(f"program offset {sym.value:#x} is not an instruction", **where)
        fn = ctx.functions.get((sym.shndx, sym.value // INSN_SIZE))
        if fn is None or fn.sec_info is None:
            raise RelocationError(f"{sym.name!r} is not a program", **where)
        prog = spec.programs[fn.name]
        if prog.prog_type is not BpfProgType.STRUCT_OPS:
            raise RelocationError(f"program {fn.name!r} is not a struct_ops program", **where)
        ops.members[member.name] = fn.name
        if prog.attach_to is None:
            prog.attach_to = member.name
