"""pybpf.object: loading every fixture, running the meaningful programs with results derived
from their C source and the kernel's BPF_PROG_TEST_RUN rules, the load-time checks, tail calls,
callbacks, timers and work queues, struct_ops, traps with C lines, threads, bad inputs."""

from __future__ import annotations

import dataclasses
import errno
import json
import struct
import threading
from pathlib import Path

import pytest

import pybpf
from pybpf import (
    DEFAULT_HELPERS,
    LinkError,
    MapError,
    MemoryAccessError,
    NotFoundError,
    RunInputError,
    UnsupportedError,
    VerificationError,
)
from pybpf.cli import main
from pybpf.object import KCONFIG_VALUES, Object, encode_ctx, kernel_version
from pybpf.uapi import BpfProgType

FIXTURES = Path(__file__).resolve().parent / "fixtures"
PACKET = bytes(range(64))
XDP_ABORTED, XDP_DROP, XDP_PASS = 0, 1, 2
KSYMS = {"bpf_prog_active": 0x10000}


def load(name: str, **kw: object) -> Object:
    return pybpf.load_object(FIXTURES / f"{name}.o", **kw)


def u32(v: int) -> int:
    return v & 0xFFFFFFFF


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.o")), ids=lambda p: p.name)
def test_every_fixture_loads(path: Path) -> None:
    spec = pybpf.load_spec(path)
    missing = sorted(
        {h for p in spec.programs.values() for h in p.helpers} - set(DEFAULT_HELPERS.by_id)
    )
    if missing:
        # A helper pybpf does not implement (btf_core.o's bpf_get_current_task) fails the load.
        with pytest.raises(LinkError, match=f"unknown helper {missing[0]}"):
            pybpf.load_object(path, ksyms=KSYMS)
        return
    with pybpf.load_object(path, ksyms=KSYMS) as obj:
        assert set(obj.programs) == set(spec.programs)
        assert set(obj.maps) == {m.name for m in spec.maps.values() if m.autocreate}
        assert set(obj.struct_ops) == set(spec.struct_ops)
        assert obj.license == spec.license
        for prog in obj.programs.values():
            assert prog.type == spec.programs[prog.name].type
            prog.prepare()


def test_calls_subprograms_loop_for_each_map_in_map() -> None:
    obj = load("loader_calls")
    # sum_to(8) = 36; triple(64) = 192; bpf_loop adds 0+1+2+3+4 = 10; outer[1] holds
    # inner_b (initial slot) so +100; every value is 0 so the for_each sum adds 0.
    assert obj.programs["xdp_calls"].run(data=PACKET).retval == 36 + 192 + 10 + 100
    obj.maps["values"].update(2, 5)
    obj.maps["values"].update(3, 7)
    res = obj.programs["xdp_calls"].run(data=PACKET[:20])
    assert res.retval == 36 + 60 + 10 + 100 + 12
    assert res.data == PACKET[:20] and res.program == "xdp_calls"
    assert obj.maps["outer"][1] is obj.maps["inner_b"]
    with pytest.raises(MapError) as e:
        obj.maps["outer"][0]
    assert e.value.errno == errno.ENOENT


def test_tail_calls() -> None:
    obj = load("loader_calls")
    res = obj.programs["xdp_tail"].run(data=PACKET)
    assert (res.retval, res.tail_calls, res.program) == (6, 1, "tail_target")  # sum_to(3)
    obj.maps["jump_table"][0] = obj.programs["tail_other"]
    assert obj.programs["xdp_tail"].run(data=PACKET).retval == XDP_DROP
    obj.maps["jump_table"].delete(0)
    res = obj.programs["xdp_tail"].run(data=PACKET)
    assert (res.retval, res.tail_calls) == (XDP_ABORTED, 0)  # empty slot: falls through


def test_tail_call_limit() -> None:
    obj = load("object_runtime")
    obj.maps["self_jump"][0] = obj.programs["chain"]
    res = obj.programs["chain"].run(data=PACKET)
    # The first run and MAX_TAIL_CALL_CNT (33) tail calls; the 34th call falls through.
    assert (res.retval, res.tail_calls) == (34, 33)


def test_global_data_and_kconfig() -> None:
    obj = load("loader_globals")
    tc = obj.programs["tc_globals"]
    assert tc.type == "sched_cls"
    # scale * (bias + seen) + custom_word with seen counting runs.
    assert [tc.run(data=PACKET).retval for _ in range(3)] == [
        3 * (7 + n) + 0x1234 for n in (1, 2, 3)
    ]
    bss = obj.maps["loader_g.bss"][0]
    assert bss == {"seen": 3, "hist": [3, 0, 0, 0]}  # tc sees len 64: 64 & 3 == 0
    assert obj.maps["loader_g.data"][0] == {"bias": 7}
    with pytest.raises(MapError) as e:
        obj.maps["loader_g.rodata"][0] = bytes(obj.maps["loader_g.rodata"].value_size)
    assert e.value.errno == errno.EPERM
    res = obj.programs["socket_version"].run(data=PACKET)
    version = KCONFIG_VALUES["LINUX_KERNEL_VERSION"]
    assert version == kernel_version(6, 6, 0)
    assert res.retval == 50  # socket filters see the packet from the network header
    assert res.output == [f"kernel {version} hz 250 len 50"]
    other = load("loader_globals", kconfig={"CONFIG_HZ": 1000, "LINUX_KERNEL_VERSION": 0})
    res = other.programs["socket_version"].run(data=PACKET)
    assert res.retval == 0 and res.output == ["kernel 0 hz 1000 len 50"]


def test_strong_kconfig_without_value_is_a_link_error() -> None:
    spec = pybpf.load_spec(FIXTURES / "loader_globals.o")
    spec.externs["LINUX_KERNEL_VERSION"] = dataclasses.replace(
        spec.externs["LINUX_KERNEL_VERSION"], name="CONFIG_PYBPF_NOWHERE", essential_name=""
    )
    with pytest.raises(LinkError, match="CONFIG_PYBPF_NOWHERE"):
        Object(spec)


def test_every_map_type_through_a_program() -> None:
    obj = load("loader_maps", ncpus=2)
    assert obj.programs["xdp_count"].run(data=PACKET[:16]).retval == XDP_PASS
    m = obj.maps
    assert m["counts"][0] == 1  # first byte 0
    assert m["percpu_counts"][0] == [{"count": 1, "last_len": 16}, {"count": 0, "last_len": 0}]
    assert m["by_len"][16] == {"count": 1, "last_len": 16}
    assert m["percpu_by_byte"][0] == [1, 0]
    assert m["lru"][16] == 1 and m["lru_percpu"][16] == [1, 0]
    # The queue has only a value_size (no BTF type): its values stay bytes.
    assert list(m["lengths_queue"]) == [struct.pack("<I", 16)] and list(m["lengths_stack"]) == [16]
    assert m["seen"].peek(16) is None
    assert m["events"].consume() == [struct.pack("<I", 16)]
    # A route for the first four bytes (a /8 prefix of 0.x.x.x) makes the program drop.
    m["routes"][{"prefixlen": 8, "addr": 0}] = 9
    assert obj.programs["xdp_count"].run(data=PACKET[:20]).retval == XDP_DROP
    m["perf_events"].open()
    res = obj.programs["xdp_drain"].run(data=PACKET)
    assert res.retval == 16 + 16  # popped from the queue and the stack
    assert m["perf_events"].read() == [struct.pack("<I", 16)]
    assert len(m["lengths_queue"]) == 0


def test_legacy_maps_socket_filter() -> None:
    obj = load("loader_legacy")
    prog = obj.programs["socket_legacy"]
    assert prog.type == "socket_filter"
    ipv4 = bytes(12) + b"\x08\x00" + bytes([0x45]) + bytes(19)
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert [prog.run(data=p).retval for p in (ipv4, ipv4, arp)] == [1, 2, 1]
    # skb->protocol is the big-endian EtherType loaded as a little-endian u32.
    assert obj.maps["legacy_counts"][0x0008] == struct.pack("<Q", 2)  # no BTF: bytes
    assert obj.maps["legacy_counts"][0x0608] == struct.pack("<Q", 1)
    assert obj.maps["legacy_array"][0] == struct.pack("<I", 3)


def test_kfuncs_wq_and_ksyms() -> None:
    with pytest.raises(LinkError, match="bpf_prog_active"):
        load("loader_kfuncs")
    obj = load("loader_kfuncs", ksyms=KSYMS)
    res = obj.programs["tc_wq"].run(data=PACKET)
    assert res.retval == 1  # the ksym's low 16 bits are zero
    assert [e.kind for e in res.async_ran] == ["wq"] and res.async_ran[0].retval == 0
    assert obj.maps["wq_map"][0]["runs"] == 1
    res = obj.programs["tc_wq"].run(data=PACKET)
    assert res.retval == u32(-3) and res.async_ran == []  # a second bpf_wq_init: -EBUSY
    # A weak typed ksym the runtime lacks reads as address 0.
    res = obj.programs["syscall_ksym"].run()
    assert (res.retval, res.r0, res.data, res.ctx) == (u32(-1), u32(-1), None, None)


def test_timer_callback_runs_after_the_program() -> None:
    obj = load("object_runtime")
    res = obj.programs["arm_timer"].run(data=PACKET)
    assert res.retval == 0
    assert [(e.kind, e.retval) for e in res.async_ran] == [("timer", 0)]
    assert obj.maps["timers"][0]["fired"] == 1


def test_xdp_adjust_head_and_tail() -> None:
    obj = load("object_runtime")
    res = obj.programs["xdp_grow"].run(data=PACKET[:20])
    assert res.retval == XDP_PASS
    assert res.data == struct.pack("<I", 0xDEADBEEF) + PACKET[:18]


def test_xdp_ctx_in_and_out() -> None:
    obj = load("object_runtime")
    # 4 bytes of metadata in front of 16 bytes of packet (data = meta length, data_end).
    res = obj.programs["xdp_grow"].run(data=PACKET[:20], ctx={"data": 4, "data_end": 20})
    assert res.retval == XDP_PASS
    data, data_end = struct.unpack_from("<II", res.ctx)
    # adjust_head moves the metadata along (data - data_meta stays 4); the packet grew by 4
    # at the head and lost 2 at the tail: 4 + 16 + 4 - 2 bytes from data_meta to data_end.
    assert (data, data_end) == (4, 22)
    assert res.data == PACKET[:4] + struct.pack("<I", 0xDEADBEEF) + PACKET[4:18]


def test_skb_ctx_in_and_out() -> None:
    obj = load("object_runtime")
    res = obj.programs["count_hits"].run(data=PACKET, ctx={"mark": 7, "priority": 3})
    assert res.retval == 0
    assert struct.unpack_from("<I", res.ctx, 8)[0] == 7
    assert struct.unpack_from("<I", res.ctx, 32)[0] == 3
    with pytest.raises(RunInputError) as e:
        obj.programs["count_hits"].run(data=PACKET, ctx={"len": 5})
    assert e.value.errno == errno.EINVAL


def test_struct_ops_members_take_u64_arguments() -> None:
    obj = load("object_runtime")
    ops = obj.struct_ops["ops"]
    assert set(ops.members) == {"ssthresh", "cong_avoid"}
    assert ops.value["flags"] == 3
    sk = bytearray(struct.pack("<II", 10, 20))
    assert ops.call("ssthresh", sk).retval == 5
    ops.call("cong_avoid", sk, 0, 5)
    assert struct.unpack("<II", sk) == (15, 20)  # below ssthresh: cwnd += acked
    ops.call("cong_avoid", bytearray(struct.pack("<II", 30, 20)), 0, 5)
    with pytest.raises(NotFoundError):
        ops.call("undo_cwnd")


def test_trap_names_pc_and_c_line() -> None:
    obj = load("object_runtime")
    with pytest.raises(MemoryAccessError) as e:
        obj.programs["unchecked"].run(data=PACKET)
    err = e.value
    assert err.address == 0 and not err.write and err.pc >= 0
    assert "program unchecked" in str(err)
    assert "object_runtime.c" in str(err) and "return *v;" in str(err)


def test_repeat_runs_on_one_ctx() -> None:
    obj = load("object_runtime")
    obj.maps["hash_hits"][1] = 0
    res = obj.programs["count_hits"].run(data=PACKET, repeat=5)
    assert res.retval == 0 and res.duration_ns > 0
    assert obj.maps["hits"][0] == 5 and obj.maps["hash_hits"][1] == 5
    obj.programs["count_hits"].run(data=PACKET, repeat=0)  # 0 means once, as in the kernel
    assert obj.maps["hits"][0] == 6


def run_in_threads(prog: pybpf.Program, threads: int, runs: int) -> list[int]:
    """Run ``prog`` ``runs`` times on each of ``threads`` threads started together; no run
    may fail. Returns the CPU each thread ran as."""
    cpus: list[int] = []
    errors: list[BaseException] = []
    ready = threading.Barrier(threads)

    def work() -> None:
        ready.wait()
        try:
            for _ in range(runs):
                prog.run(data=PACKET)
            cpus.append(prog.object.thread_cpu())
        except pybpf.BpfError as e:
            errors.append(e)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert errors == []
    return cpus


def test_threads_lose_no_atomic_update() -> None:
    obj = load("object_runtime")
    obj.maps["hash_hits"][1] = 0
    threads, runs = 4, 100
    run_in_threads(obj.programs["count_hits"], threads, runs)
    assert obj.maps["hits"][0] == threads * runs
    assert obj.maps["hash_hits"][1] == threads * runs


def test_load_time_checks() -> None:
    spec = pybpf.load_spec(FIXTURES / "loader_globals.o")
    spec.license = "Proprietary"
    with pytest.raises(VerificationError, match="GPL-restricted function bpf_trace_printk"):
        Object(spec)
    Object(spec, verify=False).close()
    kspec = pybpf.load_spec(FIXTURES / "loader_kfuncs.o")
    kspec.license = "MIT"
    with pytest.raises(VerificationError, match="kernel function bpf_wq_init"):
        Object(kspec, ksyms=KSYMS)
    lookup = DEFAULT_HELPERS.by_name["map_lookup_elem"]
    narrow = DEFAULT_HELPERS.with_(
        dataclasses.replace(lookup, prog_types=frozenset({BpfProgType.KPROBE}))
    )
    with pytest.raises(VerificationError, match="not allowed in xdp programs"):
        load("loader_maps", helpers=narrow)
    with pytest.raises(LinkError, match="unknown helper"):
        load("loader_maps", helpers=DEFAULT_HELPERS.without("ringbuf_output"))


def test_unknown_kfunc_strong_and_weak() -> None:
    no_wq = DEFAULT_HELPERS.without("bpf_wq_start")
    with pytest.raises(LinkError, match="unknown kfunc 'bpf_wq_start'"):
        load("loader_kfuncs", ksyms=KSYMS, helpers=no_wq)


def test_engines() -> None:
    with pytest.raises(UnsupportedError, match="jit engine"):
        load("object_runtime", engine="jit")
    obj = load("object_runtime")
    with pytest.raises(UnsupportedError, match="jit engine"):
        obj.programs["count_hits"].run(data=PACKET, engine="jit")


def test_bad_inputs() -> None:
    obj = load("object_runtime")
    with pytest.raises(NotFoundError) as e:
        obj.programs["nope"]
    assert isinstance(e.value, KeyError) and "xdp_grow" in str(e.value)
    assert "nope" not in obj.programs and obj.maps.get("nope") is None
    with pytest.raises(RunInputError):
        obj.programs["count_hits"].run(data=b"short")  # less than an Ethernet header
    with pytest.raises(RunInputError):
        obj.programs["count_hits"].run(data=PACKET, ctx=3.5)
    with pytest.raises(RunInputError):
        obj.programs["count_hits"].run(data=PACKET, ctx={"no_such_field": 1})
    with pytest.raises(RunInputError):
        obj.programs["count_hits"].run(data=PACKET, repeat=-1)
    syscall = load("loader_kfuncs", ksyms=KSYMS).programs["syscall_ksym"]
    with pytest.raises(RunInputError) as err:
        syscall.run(data=PACKET)  # syscall programs take no data
    assert err.value.errno == errno.EINVAL
    with pytest.raises(RunInputError):
        encode_ctx(BpfProgType.SYSCALL, {"x": 1})


def test_encode_ctx_forms() -> None:
    assert encode_ctx(BpfProgType.XDP, None) is None
    assert encode_ctx(BpfProgType.XDP, b"\x01") == b"\x01"
    assert encode_ctx(BpfProgType.XDP, {"data_end": 20}) == struct.pack("<6I", 0, 20, 0, 0, 0, 0)
    assert encode_ctx(BpfProgType.RAW_TRACEPOINT, [1, -1]) == struct.pack("<Qq", 1, -1)
    assert encode_ctx(BpfProgType.RAW_TRACEPOINT, {"arg1": 2}) == struct.pack("<QQ", 0, 2)


def test_cli_run_object(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(FIXTURES / "loader_globals.o")
    argv = ["run", path, "--prog", "socket_version", "--data-hex", PACKET.hex(), "--json"]
    assert main(argv) == 0
    record = pybpf_json(capsys)
    assert record["retval"] == 50 and record["type"] == "socket_filter"
    assert record["output"] == [f"kernel {KCONFIG_VALUES['LINUX_KERNEL_VERSION']} hz 250 len 50"]
    assert main(["run", path, "--prog", "tc_globals", "--data-hex", PACKET.hex(), "--json"]) == 0
    record = pybpf_json(capsys)
    assert record["maps"]["loader_g.bss"]["changed"][0]["after"] == (
        struct.pack("<Q4I", 1, 1, 0, 0, 0).hex()
    )
    ctx = '{"mark": 9}'
    assert (
        main(["run", path, "--prog", "tc_globals", "--data-hex", PACKET.hex(), "--ctx", ctx]) == 0
    )
    assert "ctx out (192 bytes): 0000000000000000090000" in capsys.readouterr().out


def pybpf_json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--prog", "unchecked", "--data-hex", PACKET.hex()], 1, "return *v;"),
        (["--prog", "nope"], 2, "no program named 'nope'"),
        ([], 2, "several programs"),
        (["--prog", "count_hits", "--data-hex", PACKET.hex(), "--ctx", "{bad"], 2, "not JSON"),
        (["--prog", "count_hits", "--data-hex", "0011"], 2, "at least 14"),
        (["--prog", "count_hits", "--data-hex", PACKET.hex(), "--engine", "jit"], 3, "jit"),
        (["--prog", "count_hits", "--mem-hex", "00"], 2, "raw programs"),
    ],
)
def test_cli_run_object_errors(
    argv: list[str], code: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(FIXTURES / "object_runtime.o"), *argv]) == code
    assert message in capsys.readouterr().err


def test_threads_run_on_their_own_cpu() -> None:
    """Concurrent threads use distinct per-CPU slots, as programs on distinct CPUs do: the
    non-atomic `pp->count++` on a per-CPU value then loses nothing."""
    obj = load("loader_maps", ncpus=4)
    threads, runs = 4, 60
    cpus = run_in_threads(obj.programs["xdp_count"], threads, runs)
    assert sorted(cpus) == [0, 1, 2, 3]
    counts = [slot["count"] for slot in obj.maps["percpu_counts"][0]]
    assert counts == [runs] * threads


def test_run_on_a_chosen_cpu() -> None:
    obj = load("loader_maps", ncpus=2)
    prog = obj.programs["xdp_count"]
    prog.run(data=PACKET, cpu=1)
    prog.run(data=PACKET, cpu=1)
    prog.run(data=PACKET)
    assert [slot["count"] for slot in obj.maps["percpu_counts"][0]] == [1, 2]
    for bad in (2, -1, True, "0"):
        with pytest.raises(pybpf.RunInputError, match=r"cpu must be an int in 0\.\.1"):
            prog.run(data=PACKET, cpu=bad)
