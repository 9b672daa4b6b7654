"""What `pybpf inspect OBJ.o [--json]` prints: a stable, JSON-able summary of an ObjectSpec.

Sits on top of the loader (reads an `ObjectSpec`, nothing else); the CLI calls `summarize`
for ``--json`` and `format_summary` for the text form. Keys and their order are stable and
documented in the README; lists are in the object's order (programs and maps as libbpf
orders them), helper ids and kfunc names sorted.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pybpf.btf import Btf
from pybpf.loader.spec import MapSpec, ObjectSpec, ProgramSpec
from pybpf.uapi import map_flag_names

SCHEMA_VERSION = 1


def _type_name(btf: Btf | None, type_id: int) -> str | None:
    if btf is None or not type_id:
        return None
    return btf.type_name(type_id)


def _map(m: MapSpec, btf: Btf | None) -> dict[str, Any]:
    return {
        "name": m.name,
        "type": m.type.short,
        "key_size": m.key_size,
        "value_size": m.value_size,
        "key_type": _type_name(btf, m.key_type_id),
        "value_type": _type_name(btf, m.value_type_id),
        "max_entries": m.max_entries,
        "flags": map_flag_names(m.map_flags),
        "numa_node": m.numa_node,
        "pinning": m.pinning,
        "map_extra": m.map_extra,
        "inner": _map(m.inner, btf) if m.inner is not None else None,
        "init_slots": {str(k): v for k, v in sorted(m.init_slots.items())},
        "internal": m.internal,
        "section": m.section,
        "initial_data_size": len(m.data) if m.data is not None else None,
    }


def _program(p: ProgramSpec) -> dict[str, Any]:
    return {
        "name": p.name,
        "section": p.section,
        "type": p.type,
        "expected_attach_type": (
            p.expected_attach_type.short if p.expected_attach_type is not None else None
        ),
        "attach_to": p.attach_to,
        "autoload": p.autoload,
        "sleepable": p.sleepable,
        "insns": p.slot_count,
        "subprograms": [{"name": s.name, "start": s.start} for s in p.subprograms],
        "maps": p.maps_used,
        "kfuncs": p.kfuncs,
        "helpers": p.helpers,
        "core_relocations": len(p.core_relos),
    }


def summarize(spec: ObjectSpec) -> dict[str, Any]:
    """The inspect summary of ``spec`` (see the module docstring)."""
    btf = spec.btf
    btf_summary = None
    if btf is not None:
        kinds: dict[str, int] = {}
        for t in btf.types[1:]:
            kinds[t.kind.name.lower()] = kinds.get(t.kind.name.lower(), 0) + 1
        btf_summary = {"types": len(btf.types) - 1, "kinds": dict(sorted(kinds.items()))}
    return {
        "schema": SCHEMA_VERSION,
        "object": Path(spec.path).name if spec.path else None,
        "name": spec.name,
        "license": spec.license,
        "gpl_compatible": spec.gpl_compatible,
        "version": spec.version,
        "programs": [_program(p) for p in spec.programs.values()],
        "maps": [_map(m, btf) for m in spec.maps.values()],
        "struct_ops": [
            {
                "name": s.name,
                "type": s.type_name,
                "size": s.size,
                "link": s.link,
                "section": s.section,
                "members": dict(s.members),
            }
            for s in spec.struct_ops.values()
        ],
        "externs": [
            {
                "name": e.name,
                "kind": e.kind,
                "weak": e.weak,
                "function": e.is_func,
            }
            for e in spec.externs.values()
        ],
        "kfuncs": spec.kfuncs,
        "helpers": spec.helpers,
        "btf": btf_summary,
    }


def _flags(values: list[str]) -> str:
    return "|".join(v.removeprefix("BPF_F_") for v in values) or "-"


def format_summary(d: dict[str, Any]) -> str:
    """The text form of a `summarize` result."""
    lines = [
        f"object {d['object'] or d['name']}: license {d['license']!r}"
        f" ({'GPL-compatible' if d['gpl_compatible'] else 'not GPL-compatible'}),"
        f" version {d['version']:#x}"
    ]
    lines.append(f"programs ({len(d['programs'])}):")
    for p in d["programs"]:
        extra = []
        if p["attach_to"]:
            extra.append(f"-> {p['attach_to']}")
        if not p["autoload"]:
            extra.append("not autoloaded")
        if p["sleepable"]:
            extra.append("sleepable")
        lines.append(
            f"  {p['name']}: {p['type']} [{p['section']}] {p['insns']} insns"
            + (f" ({', '.join(extra)})" if extra else "")
        )
        if p["subprograms"]:
            subs = ", ".join(f"{s['name']}@{s['start']}" for s in p["subprograms"])
            lines.append(f"    subprograms: {subs}")
        if p["maps"]:
            lines.append(f"    maps: {', '.join(p['maps'])}")
        if p["helpers"]:
            lines.append(f"    helpers: {', '.join(str(h) for h in p['helpers'])}")
        if p["kfuncs"]:
            lines.append(f"    kfuncs: {', '.join(p['kfuncs'])}")
    lines.append(f"maps ({len(d['maps'])}):")
    for m in d["maps"]:
        key = f"{m['key_size']}" + (f" ({m['key_type']})" if m["key_type"] else "")
        value = f"{m['value_size']}" + (f" ({m['value_type']})" if m["value_type"] else "")
        lines.append(
            f"  {m['name']}: {m['type']} key {key} value {value}"
            f" max_entries {m['max_entries']} flags {_flags(m['flags'])}"
        )
        if m["inner"]:
            i = m["inner"]
            lines.append(
                f"    inner {i['type']} key {i['key_size']} value {i['value_size']}"
                f" max_entries {i['max_entries']}"
            )
        if m["init_slots"]:
            slots = ", ".join(f"[{k}] = {v}" for k, v in m["init_slots"].items())
            lines.append(f"    initial slots: {slots}")
    if d["struct_ops"]:
        lines.append(f"struct_ops ({len(d['struct_ops'])}):")
        for s in d["struct_ops"]:
            members = ", ".join(f"{k} = {v}" for k, v in s["members"].items())
            link = " (link)" if s["link"] else ""
            lines.append(f"  {s['name']}: struct {s['type']}{link}: {members}")
    if d["externs"]:
        names = ", ".join(
            f"{e['name']} ({e['kind']}{', weak' if e['weak'] else ''})" for e in d["externs"]
        )
        lines.append(f"externs: {names}")
    if d["btf"]:
        kinds = ", ".join(f"{k} {n}" for k, n in d["btf"]["kinds"].items())
        lines.append(f"btf: {d['btf']['types']} types ({kinds})")
    else:
        lines.append("btf: none")
    return "\n".join(lines) + "\n"
