"""Record the Linux kernel's answers for the kernel-golden corpus (a script; not a test).

Place in the test suite: the oracle side of `test_kernel_golden.py`. For every case of
`cases.py` it loads `<obj>.o` with libbpf (through ctypes), applies the map preparation,
runs each step with BPF_PROG_TEST_RUN and writes `golden/<case>.json`: the inputs, each
step's retval / data_out / ctx_out, every map's contents afterwards, what the queues and
stacks still hold (drained by pop) and the ring buffer records (consumed with
`ring_buffer__consume`).

Determinism: the process pins itself to CPU 0 before loading anything, so per-CPU map slots
a program touches are CPU 0's and only CPU 0's value of a per-CPU map is recorded
(`"percpu": "cpu0"`). Hash-family contents are recorded sorted by key: the kernel's walk
order depends on a random hash seed, so only the set of entries is meaningful.
Maps whose userspace values are kernel object ids (prog arrays, maps of maps) are not
dumped; their inner maps are. Bloom filters cannot be dumped; the programs report the
membership answers instead.

Usage (root, bpf() permitted):  python3 tests/kernel/record.py [CASE ...]
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import platform
import sys
from ctypes import c_uint32, c_void_p, create_string_buffer
from pathlib import Path

# Run as a script, Python puts this directory first on sys.path: `cases` is found from anywhere;
# the libbpf bindings are shared with the corpus recorder one level up.
sys.path.append(str(Path(__file__).resolve().parents[1]))
from cases import CASES, Case, Prep, Step
from libbpf_ctypes import LIBBPF_SONAME, SAMPLE_CB, Libbpf, LibbpfError, TestRunOpts, check

from pybpf.uapi import BpfMapType, BpfProgType

HERE = Path(__file__).resolve().parent
DATA_OUT_SLACK = 8192  # room for bpf_xdp_adjust_tail growth in data_out
CTX_OUT_ROOM = 4096
GOLDEN_FORMAT = 1

NOT_DUMPED = {
    BpfMapType.PROG_ARRAY,
    BpfMapType.ARRAY_OF_MAPS,
    BpfMapType.HASH_OF_MAPS,
    BpfMapType.BLOOM_FILTER,
    BpfMapType.RINGBUF,
    BpfMapType.QUEUE,
    BpfMapType.STACK,
}
PERCPU = {BpfMapType.PERCPU_ARRAY, BpfMapType.PERCPU_HASH, BpfMapType.LRU_PERCPU_HASH}


def refuse_unless_permitted() -> None:
    """Stop with a clear message when this machine cannot load BPF programs."""
    if os.geteuid() != 0:
        sys.exit("record.py: needs root (CAP_BPF + CAP_NET_ADMIN) to load programs; refusing")
    try:
        ctypes.CDLL(LIBBPF_SONAME)
    except OSError as e:
        sys.exit(f"record.py: libbpf.so.1 not found ({e}); install libbpf1")
    libc = ctypes.CDLL(None, use_errno=True)
    # BPF_MAP_CREATE of a 1-entry array: the cheapest probe that bpf() is permitted.
    attr = (c_uint32 * 32)(2, 4, 4, 1)
    fd = libc.syscall(321, 0, attr, ctypes.sizeof(attr))
    if fd < 0:
        err = ctypes.get_errno()
        sys.exit(f"record.py: bpf() is not permitted here ({os.strerror(err)}); refusing")
    os.close(fd)


class Recorder:
    def __init__(self) -> None:
        self.lb = Libbpf()
        self.lib = self.lb.lib
        self.ncpus = self.lib.libbpf_num_possible_cpus()

    # ------------------------------------------------------------ map helpers

    def _map(self, obj: int, name: str) -> int:
        m = self.lib.bpf_object__find_map_by_name(obj, name.encode())
        if not m:
            raise LibbpfError(f"no map {name!r}")
        return m

    def _value_buf_size(self, m: int) -> int:
        size = self.lib.bpf_map__value_size(m)
        if BpfMapType(self.lib.bpf_map__type(m)) in PERCPU:
            return ((size + 7) & ~7) * self.ncpus
        return size

    def _prepare(self, obj: int, prep: Prep) -> None:
        m = self._map(obj, prep.map)
        fd = self.lib.bpf_map__fd(m)
        key = create_string_buffer(prep.key, max(len(prep.key), 1))
        if prep.op == "update":
            vsize = self.lib.bpf_map__value_size(m)
            if BpfMapType(self.lib.bpf_map__type(m)) in PERCPU:
                slot = (vsize + 7) & ~7
                raw = b"".join(prep.value.ljust(slot, b"\0") for _ in range(self.ncpus))
            else:
                raw = prep.value
            value = create_string_buffer(raw, len(raw))
            rc = self.lib.bpf_map_update_elem(fd, key, value, prep.flags)
        elif prep.op == "push":
            value = create_string_buffer(prep.value, len(prep.value))
            rc = self.lib.bpf_map_update_elem(fd, None, value, prep.flags)
        elif prep.op == "update_prog":
            prog = self.lib.bpf_object__find_program_by_name(obj, prep.target.encode())
            ref = c_uint32(self.lib.bpf_program__fd(prog))
            rc = self.lib.bpf_map_update_elem(fd, key, ctypes.byref(ref), prep.flags)
        elif prep.op == "update_map":
            ref = c_uint32(self.lib.bpf_map__fd(self._map(obj, prep.target)))
            rc = self.lib.bpf_map_update_elem(fd, key, ctypes.byref(ref), prep.flags)
        else:
            raise LibbpfError(f"unknown preparation {prep.op!r}")
        check(rc, f"prepare {prep}")

    def _dump(self, m: int) -> dict[str, str]:
        fd = self.lib.bpf_map__fd(m)
        ksize = self.lib.bpf_map__key_size(m)
        vsize = self.lib.bpf_map__value_size(m)
        key = create_string_buffer(ksize)
        nxt = create_string_buffer(ksize)
        value = create_string_buffer(self._value_buf_size(m))
        entries: dict[str, str] = {}
        prev = None
        while self.lib.bpf_map_get_next_key(fd, prev, nxt) == 0:
            ctypes.memmove(key, nxt, ksize)
            prev = key
            if self.lib.bpf_map_lookup_elem(fd, key, value) == 0:
                entries[key.raw.hex()] = value.raw[:vsize].hex()
        return dict(sorted(entries.items()))

    def _drain(self, m: int) -> list[str]:
        fd = self.lib.bpf_map__fd(m)
        value = create_string_buffer(self.lib.bpf_map__value_size(m))
        out = []
        while self.lib.bpf_map_lookup_and_delete_elem(fd, None, value) == 0:
            out.append(value.raw.hex())
        return out

    def _consume(self, m: int) -> list[str]:
        records: list[str] = []

        def on_sample(_ctx: int, data: int, size: int) -> int:
            records.append(ctypes.string_at(data, size).hex())
            return 0

        cb = SAMPLE_CB(on_sample)
        rb = self.lib.ring_buffer__new(self.lib.bpf_map__fd(m), cb, None, None)
        if not rb:
            raise LibbpfError("ring_buffer__new failed")
        try:
            check(self.lib.ring_buffer__consume(rb), "ring_buffer__consume")
        finally:
            self.lib.ring_buffer__free(rb)
        return records

    # ------------------------------------------------------------ runs

    def _run(self, obj: int, step: Step) -> dict:
        prog = self.lib.bpf_object__find_program_by_name(obj, step.prog.encode())
        if not prog:
            raise LibbpfError(f"no program {step.prog!r}")
        syscall = self.lib.bpf_program__type(prog) == BpfProgType.SYSCALL
        opts = TestRunOpts(sz=ctypes.sizeof(TestRunOpts))
        # BPF_PROG_TEST_RUN treats repeat 0 as 1; syscall programs accept only 0.
        opts.repeat = 0 if step.repeat == 1 else step.repeat
        if step.data is not None:
            data_in = create_string_buffer(step.data, len(step.data))
            data_out = create_string_buffer(len(step.data) + DATA_OUT_SLACK)
            opts.data_in = ctypes.cast(data_in, c_void_p)
            opts.data_size_in = len(step.data)
            opts.data_out = ctypes.cast(data_out, c_void_p)
            opts.data_size_out = len(data_out)
        if step.ctx is not None:
            ctx_in = create_string_buffer(step.ctx, len(step.ctx))
            opts.ctx_in = ctypes.cast(ctx_in, c_void_p)
            opts.ctx_size_in = len(step.ctx)
            if not syscall:
                # Room for the whole UAPI struct: the kernel writes it all back even when
                # ctx_in was shorter, and reports the size it wrote in ctx_size_out.
                ctx_out = create_string_buffer(max(len(step.ctx), CTX_OUT_ROOM))
                opts.ctx_out = ctypes.cast(ctx_out, c_void_p)
                opts.ctx_size_out = len(ctx_out)
        rc = self.lib.bpf_prog_test_run_opts(self.lib.bpf_program__fd(prog), ctypes.byref(opts))
        result: dict = {
            "prog": step.prog,
            "data_in": None if step.data is None else step.data.hex(),
            "ctx_in": None if step.ctx is None else step.ctx.hex(),
            "repeat": step.repeat,
        }
        if rc != 0:
            code = ctypes.get_errno() if rc == -1 else -rc
            result["error"] = errno.errorcode.get(code, str(code))
            return result
        result["retval"] = opts.retval
        result["data_out"] = None if step.data is None else data_out.raw[: opts.data_size_out].hex()
        if step.ctx is None:
            result["ctx_out"] = None
        elif syscall:
            # The kernel copies a syscall program's context back over ctx_in.
            result["ctx_out"] = ctx_in.raw[: len(step.ctx)].hex()
        else:
            result["ctx_out"] = ctx_out.raw[: opts.ctx_size_out].hex()
        return result

    def record(self, case: Case) -> dict:
        path = HERE / case.obj
        obj = self.lb.open(path)
        try:
            check(self.lib.bpf_object__load(obj), f"bpf_object__load({case.obj})")
            for prep in case.prepare:
                self._prepare(obj, prep)
            runs = [self._run(obj, step) for step in case.steps]
            maps, queues, ringbufs = {}, {}, {}
            for m in self.lb.maps(obj):
                name = self.lib.bpf_map__name(m).decode()
                mtype = BpfMapType(self.lib.bpf_map__type(m))
                if mtype in (BpfMapType.QUEUE, BpfMapType.STACK):
                    queues[name] = self._drain(m)
                elif mtype is BpfMapType.RINGBUF:
                    ringbufs[name] = self._consume(m)
                elif mtype not in NOT_DUMPED:
                    maps[name] = {
                        "type": mtype.short,
                        "internal": bool(self.lib.bpf_map__is_internal(m)),
                        "percpu": "cpu0" if mtype in PERCPU else None,
                        "entries": self._dump(m),
                    }
        finally:
            self.lib.bpf_object__close(obj)
        return {
            "format": GOLDEN_FORMAT,
            "case": case.name,
            "about": case.about,
            "object": case.obj,
            "kernel": platform.release(),
            "possible_cpus": self.ncpus,
            "command": "python3 tests/kernel/record.py " + case.name,
            "prepare": [_prep_json(p) for p in case.prepare],
            "runs": runs,
            "maps": maps,
            "queues": queues,
            "ringbufs": ringbufs,
        }


def _prep_json(p: Prep) -> dict:
    out: dict = {"op": p.op, "map": p.map}
    if p.op != "push":
        out["key"] = p.key.hex()
    if p.op in ("update", "push"):
        out["value"] = p.value.hex()
    else:
        out["target"] = p.target
    out["flags"] = p.flags
    return out


def internal_section(name: str) -> str:
    """The ELF section of a libbpf internal map: `.data`/`.rodata`/`.bss` maps are named
    `<object prefix><section>` (the prefix cut so the whole stays within 15 characters),
    `.data.*`/`.rodata.*`/`.bss.*` maps by their section name itself."""
    return name if name.startswith(".") else name[name.index(".") :]


def attach_sections(golden: dict) -> None:
    """Give every map its ELF section so the comparison can find it under either name."""
    from elftools.elf.elffile import ELFFile

    with (HERE / golden["object"]).open("rb") as f:
        sections = {s.name for s in ELFFile(f).iter_sections()}
    for name, info in golden["maps"].items():
        section = internal_section(name) if info["internal"] else ".maps"
        if section not in sections:
            raise LibbpfError(f"map {name!r}: no section {section!r} in {golden['object']}")
        info["section"] = section


def main(argv: list[str]) -> int:
    refuse_unless_permitted()
    os.sched_setaffinity(0, {0})
    wanted = set(argv)
    unknown = wanted - {c.name for c in CASES}
    if unknown:
        sys.exit(f"record.py: unknown cases {sorted(unknown)}")
    rec = Recorder()
    out_dir = HERE / "golden"
    out_dir.mkdir(exist_ok=True)
    failed = 0
    for case in CASES:
        if wanted and case.name not in wanted:
            continue
        try:
            golden = rec.record(case)
        except LibbpfError as e:
            print(f"{case.name}: FAILED: {e}", file=sys.stderr)
            failed += 1
            continue
        attach_sections(golden)
        path = out_dir / f"{case.name}.json"
        path.write_text(json.dumps(golden, indent=1) + "\n")
        errors = [r.get("error") for r in golden["runs"] if "error" in r]
        print(f"{case.name}: {len(golden['runs'])} runs" + (f", errors {errors}" if errors else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
