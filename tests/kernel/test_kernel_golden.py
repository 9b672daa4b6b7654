"""pybpf against the Linux kernel: every golden file of `golden/` replayed through the public API.

Place in the test suite: the end-to-end check of the runtime (issue 4's "Done when"). Each
golden was recorded by `record.py` with libbpf and BPF_PROG_TEST_RUN on a real kernel; it
carries the inputs (map preparation, each step's data_in / ctx_in / repeat) and the kernel's
answers (retval, data_out, ctx_out or the errno that refused the run, every map's contents
after the last step, what queues and stacks still hold, the ring buffer records). This test
loads the same object with `pybpf.load_object`, replays the inputs and compares all of it.

Per-CPU maps: the kernel values were recorded on CPU 0 only (see record.py), pybpf's runs
use CPU 0 too, so only CPU 0's value is compared. Hash-family contents compare as sets of
(key, value) pairs: the kernel's walk order depends on a random seed.
"""

from __future__ import annotations

import errno
import functools
import json
from pathlib import Path
from typing import Any

import pytest
from elftools.elf.elffile import ELFFile

import pybpf

HERE = Path(__file__).resolve().parent
GOLDEN = sorted((HERE / "golden").glob("*.json"))

ENGINES = ("interp", "jit")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _params() -> list[Any]:
    return [
        pytest.param(path, engine, id=f"{path.stem}-{engine}")
        for engine in ENGINES
        for path in GOLDEN
    ]


@functools.cache
def _engine_missing(engine: str) -> str | None:
    """Why ``engine`` cannot run programs in this checkout, or None when it can."""
    try:
        pybpf.load_object(HERE / "syscall.o", engine=engine)
    except pybpf.UnsupportedError as e:
        return str(e)
    return None


def _map(obj: Any, name: str, section: str) -> Any:
    """pybpf's map for a libbpf map name, or the internal map of that ELF section."""
    if name in obj.maps:
        return obj.maps[name]
    matches = [n for n, spec in obj.spec.maps.items() if spec.real_name == section]
    assert len(matches) == 1, f"no pybpf map named {name!r} or made from section {section!r}"
    return obj.maps[matches[0]]


def _prepare(obj: Any, prep: dict[str, Any]) -> None:
    m = obj.maps[prep["map"]]
    op, flags = prep["op"], prep["flags"]
    if op == "push":
        m.update(None, bytes.fromhex(prep["value"]), flags)
        return
    key = bytes.fromhex(prep["key"])
    if op == "update":
        m.update(key, bytes.fromhex(prep["value"]), flags)
    elif op == "update_prog":
        m.update(key, obj.programs[prep["target"]], flags)
    elif op == "update_map":
        m.update(key, obj.maps[prep["target"]], flags)
    else:
        raise AssertionError(f"golden has an unknown preparation {op!r}")


def _hex(raw: Any) -> str:
    return bytes(raw).hex()


def _entries(m: Any, percpu: bool) -> dict[str, str]:
    out = {}
    for k, v in m.items():
        value = m.encode_value(v)
        out[_hex(m.encode_key(k))] = _hex(value[0] if percpu else value)
    return dict(sorted(out.items()))


def _drain(m: Any) -> list[str]:
    out = []
    while True:
        try:
            out.append(_hex(m.encode_value(m.pop())))
        except pybpf.MapError as e:
            assert e.errno == errno.ENOENT, f"{m.name}: pop failed with {e}"
            return out


def _step(obj: Any, run: dict[str, Any], index: int) -> dict[str, Any]:
    """What pybpf answers for one golden step, in the golden's own shape."""
    prog = obj.programs[run["prog"]]
    data = None if run["data_in"] is None else bytes.fromhex(run["data_in"])
    ctx = None if run["ctx_in"] is None else bytes.fromhex(run["ctx_in"])
    try:
        res = prog.run(data=data, ctx=ctx, repeat=run["repeat"])
    except pybpf.RunInputError as e:
        return {"step": index, "error": errno.errorcode.get(e.errno, str(e.errno))}
    got: dict[str, Any] = {"step": index, "retval": res.retval}
    if "data_out" in run:
        got["data_out"] = None if res.data is None or data is None else _hex(res.data)
    if "ctx_out" in run:
        got["ctx_out"] = None if res.ctx is None or ctx is None else _hex(res.ctx)
    return got


def _expected(run: dict[str, Any], index: int) -> dict[str, Any]:
    keys = ("error",) if "error" in run else ("retval", "data_out", "ctx_out")
    return {"step": index, **{k: run[k] for k in keys if k in run}}


@pytest.mark.parametrize(("path", "engine"), _params())
def test_matches_kernel(path: Path, engine: str) -> None:
    missing = _engine_missing(engine)
    if missing:
        pytest.skip(f"the {engine} engine cannot run programs yet: {missing}")
    golden = _load(path)
    obj = pybpf.load_object(HERE / golden["object"], engine=engine)
    for prep in golden["prepare"]:
        _prepare(obj, prep)
    for index, run in enumerate(golden["runs"]):
        assert _step(obj, run, index) == _expected(run, index), (
            f"{golden['case']} step {index} ({run['prog']}) differs from kernel {golden['kernel']}"
        )
    for name, info in golden["maps"].items():
        m = _map(obj, name, info["section"])
        got = _entries(m, percpu=info["percpu"] is not None)
        assert got == info["entries"], f"{golden['case']}: map {name} ({info['section']})"
    for name, values in golden["queues"].items():
        assert _drain(obj.maps[name]) == values, f"{golden['case']}: queue/stack {name}"
    for name, records in golden["ringbufs"].items():
        got_records = [_hex(r) for r in obj.maps[name].consume()]
        assert got_records == records, f"{golden['case']}: ring buffer {name}"


# Programs only ever entered by a tail call from a prog array the loader fills.
TAIL_CALL_ONLY = {
    "tailcalls.o": {"tail_a"},
    "tailcall_subprog.o": {"target_a", "chain_b", "nested_c"},
}


def _entry_points(path: Path) -> set[str]:
    """libbpf's programs of an object: global functions outside `.text`."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        return {
            sym.name
            for sym in symtab.iter_symbols()
            if sym["st_info"]["type"] == "STT_FUNC"
            and sym["st_info"]["bind"] == "STB_GLOBAL"
            and isinstance(sym["st_shndx"], int)
            and elf.get_section(sym["st_shndx"]).name != ".text"
        }


def test_goldens_cover_the_corpus() -> None:
    """Every program of every corpus object runs in some golden case (directly, or as a
    tail-call target); every golden names an object that exists."""
    used: dict[str, set[str]] = {p.with_suffix(".o").name: set() for p in HERE.glob("*.c")}
    for path in GOLDEN:
        golden = _load(path)
        if "/" in golden["object"]:
            # Objects not written for the comparison (examples, corpus): no coverage duty.
            assert (HERE / golden["object"]).is_file(), f"{path.name}: no {golden['object']}"
            continue
        assert golden["object"] in used, f"{path.name}: no source for {golden['object']}"
        progs = used[golden["object"]]
        progs.update(r["prog"] for r in golden["runs"])
        progs.update(p["target"] for p in golden["prepare"] if p["op"] == "update_prog")
    assert len(GOLDEN) >= 30
    for obj_name, progs in sorted(used.items()):
        unused = _entry_points(HERE / obj_name) - progs - TAIL_CALL_ONLY.get(obj_name, set())
        assert not unused, f"{obj_name}: programs without a golden case: {sorted(unused)}"
