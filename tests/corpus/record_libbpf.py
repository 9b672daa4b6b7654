"""Record what real libbpf reports for each corpus object (a script; not a test).

Place in the test suite: the oracle side of `tests/test_corpus.py`. For every
`tests/corpus/*.o` (or the objects named on the command line) it opens the object with libbpf
through ctypes and writes `expected/<object>.json`:

- ``open``: the view right after `bpf_object__open_file` (what `load_spec` must match):
  every program (name, section, type, expected attach type, autoload, flags, instruction
  count of the program's own code: libbpf has not appended subprograms yet) and every map
  (name, type, sizes, flags, numa_node, map_extra, pin path, internal or not, BTF key/value
  type ids, inner map, the initial bytes of internal maps);
- ``prepared``: per program, the instruction count after libbpf appended the subprograms it
  calls, taken after `bpf_object__prepare` (libbpf >= 1.6: relocation without loading
  programs; it creates the maps in the kernel, pinning is switched off first). Programs that
  are not autoloaded are not relocated by libbpf, so their count is not recorded. When
  `bpf_object__prepare` is missing or fails, the reason is recorded instead;
- ``kernel_load``: whether a real `bpf_object__load` of a fresh copy succeeded (information
  only; kernels refuse programs for reasons that have nothing to do with the object file).

Enum values are the kernel's numbers; names come from libbpf's own `libbpf_*_str`. An
expected attach type of 0 is what libbpf reports for "none".

Usage (root, bpf() permitted for the ``prepared``/``kernel_load`` parts):
    python3 tests/corpus/record_libbpf.py [--libbpf PATH/libbpf.so.1] [OBJ.o ...]
libbpf 1.1 (Debian 12) knows fewer section names than current libbpf; the committed
expectations were recorded with libbpf built from its GitHub sources (the version is written
into every file).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import sys
from ctypes import c_char_p, c_size_t, c_void_p
from pathlib import Path

# Run as a script, Python puts this directory first on sys.path; the libbpf bindings are
# shared with the kernel-golden recorder one level up.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from libbpf_ctypes import LIBBPF_SONAME, PRINT_FN, Libbpf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
FORMAT = 1
BPF_MAP_TYPE_STRUCT_OPS = 26
LIBBPF_WARN = 0


class LoggingLibbpf(Libbpf):
    """libbpf with its warnings collected (they explain a failed prepare or load)."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.log: list[str] = []
        self._printer = PRINT_FN(self._print)
        self._libc = ctypes.CDLL(None)
        self._libc.vsnprintf.argtypes = [c_char_p, c_size_t, c_char_p, c_void_p]
        self.lib.libbpf_set_print(self._printer)

    def _print(self, level: int, fmt: bytes, args: int) -> int:
        # libbpf hands over a va_list; on x86-64 that is a pointer vsnprintf accepts as is.
        if level == LIBBPF_WARN:
            buf = ctypes.create_string_buffer(4096)
            self._libc.vsnprintf(buf, len(buf), fmt, args)
            self.log.append(buf.value.decode(errors="replace").strip())
        return 0

    def take_log(self) -> list[str]:
        log, self.log = self.log, []
        return log


def _str(raw: bytes | None) -> str | None:
    return raw.decode() if raw is not None else None


def _program(lb: LoggingLibbpf, prog: int) -> dict:
    lib = lb.lib
    ptype = lib.bpf_program__type(prog)
    attach = lib.bpf_program__expected_attach_type(prog)
    return {
        "name": _str(lib.bpf_program__name(prog)),
        "section": _str(lib.bpf_program__section_name(prog)),
        "type": ptype,
        "type_name": _str(lib.libbpf_bpf_prog_type_str(ptype)),
        "expected_attach_type": attach,
        "expected_attach_type_name": _str(lib.libbpf_bpf_attach_type_str(attach)),
        "autoload": bool(lib.bpf_program__autoload(prog)),
        "flags": lib.bpf_program__flags(prog),
        "insn_cnt": lib.bpf_program__insn_cnt(prog),
    }


def _struct_ops_value(raw: bytes, programs: dict[int, str]) -> tuple[str, dict[str, str]]:
    """libbpf keeps a `struct bpf_program *` in each function-pointer member of a struct_ops
    map's initial value: say which program each such slot holds and zero the host pointer."""
    data = bytearray(raw)
    members = {}
    for off in range(0, len(data) - 7, 8):
        value = int.from_bytes(data[off : off + 8], "little")
        if value in programs:
            members[str(off)] = programs[value]
            data[off : off + 8] = bytes(8)
    return data.hex(), members


def _map(lb: LoggingLibbpf, m: int, programs: dict[int, str], *, inner: bool = False) -> dict:
    lib = lb.lib
    mtype = lib.bpf_map__type(m)
    out = {
        "name": _str(lib.bpf_map__name(m)),
        "type": mtype,
        "type_name": _str(lib.libbpf_bpf_map_type_str(mtype)),
        "key_size": lib.bpf_map__key_size(m),
        "value_size": lib.bpf_map__value_size(m),
        "max_entries": lib.bpf_map__max_entries(m),
        "map_flags": lib.bpf_map__map_flags(m),
        "numa_node": lib.bpf_map__numa_node(m),
        "map_extra": lib.bpf_map__map_extra(m),
        "btf_key_type_id": lib.bpf_map__btf_key_type_id(m),
        "btf_value_type_id": lib.bpf_map__btf_value_type_id(m),
    }
    if inner:
        return out
    out["internal"] = bool(lib.bpf_map__is_internal(m))
    out["autocreate"] = bool(lib.bpf_map__autocreate(m))
    out["pin_path"] = _str(lib.bpf_map__get_pin_path(m))
    inner_map = lib.bpf_map__inner_map(m)
    out["inner"] = _map(lb, inner_map, programs, inner=True) if inner_map else None
    out["initial_value"] = None
    if out["internal"] or mtype == BPF_MAP_TYPE_STRUCT_OPS:
        size = c_size_t(0)
        ptr = lib.bpf_map__initial_value(m, ctypes.byref(size))
        if ptr:
            out["initial_value"] = ctypes.string_at(ptr, size.value).hex()
    if mtype == BPF_MAP_TYPE_STRUCT_OPS and out["initial_value"] is not None:
        raw = bytes.fromhex(out["initial_value"])
        out["initial_value"], out["struct_ops_members"] = _struct_ops_value(raw, programs)
    return out


def _prepared_counts(lb: LoggingLibbpf, path: Path) -> dict:
    if not lb.has("bpf_object__prepare"):
        return {"error": f"libbpf {lb.version} has no bpf_object__prepare"}
    obj = lb.open(path)
    lb.take_log()
    try:
        for m in lb.maps(obj):
            lb.lib.bpf_map__set_pin_path(m, None)
        err = lb.lib.bpf_object__prepare(obj)
        if err:
            return {"error": f"bpf_object__prepare: {lb.strerror(err)}", "log": lb.take_log()}
        counts = {}
        for prog in lb.programs(obj):
            if lb.lib.bpf_program__autoload(prog):
                name = lb.lib.bpf_program__name(prog).decode()
                counts[name] = lb.lib.bpf_program__insn_cnt(prog)
        return {"insn_cnt": counts}
    finally:
        lb.lib.bpf_object__close(obj)


def _kernel_load(lb: LoggingLibbpf, path: Path) -> dict:
    obj = lb.open(path)
    try:
        for m in lb.maps(obj):
            lb.lib.bpf_map__set_pin_path(m, None)
        lb.take_log()
        err = lb.lib.bpf_object__load(obj)
        log = lb.take_log()
        # libbpf's own messages, not the verifier's dump (it holds kernel addresses)
        log = [line for line in log if "\n" not in line]
        return {"ok": not err, "error": lb.strerror(err) if err else None, "log": log[-3:]}
    finally:
        lb.lib.bpf_object__close(obj)


def running_kernel_version() -> int:
    """What libbpf reports as the version of an object without a "version" section: the
    running kernel's release as KERNEL_VERSION(major, minor, patch)."""
    major, minor, patch = (int(x) for x in re.findall(r"\d+", os.uname().release)[:3])
    return (major << 16) + (minor << 8) + min(patch, 255)


def record(lb: LoggingLibbpf, path: Path) -> dict:
    obj = lb.open(path)
    programs = {p: lb.lib.bpf_program__name(p).decode() for p in lb.programs(obj)}
    try:
        opened = {
            "object_name": _str(lb.lib.bpf_object__name(obj)),
            "kversion": lb.lib.bpf_object__kversion(obj),
            "running_kernel_version": running_kernel_version(),
            "programs": [_program(lb, p) for p in lb.programs(obj)],
            "maps": [_map(lb, m, programs) for m in lb.maps(obj)],
        }
    finally:
        lb.lib.bpf_object__close(obj)
    return {
        "format": FORMAT,
        "object": path.name,
        "libbpf": lb.version,
        "open": opened,
        "prepared": _prepared_counts(lb, path),
        "kernel_load": _kernel_load(lb, path),
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--libbpf", default=LIBBPF_SONAME, help="the libbpf shared library")
    parser.add_argument("objects", nargs="*", type=Path)
    args = parser.parse_args(argv)
    lb = LoggingLibbpf(args.libbpf)
    objects = args.objects or sorted(HERE.glob("*.o"))
    (HERE / "expected").mkdir(exist_ok=True)
    objects = [p.resolve() for p in objects]
    # Paths in libbpf's messages are then relative to the repository, as in the objects.
    os.chdir(ROOT)
    for path in objects:
        result = record(lb, path.relative_to(ROOT))
        out = HERE / "expected" / f"{path.stem}.json"
        out.write_text(json.dumps(result, indent=1) + "\n")
        prepared = result["prepared"].get("error", "ok")
        loaded = result["kernel_load"]["error"] or "ok"
        print(f"{path.name}: libbpf {lb.version}; prepare: {prepared}; kernel load: {loaded}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
