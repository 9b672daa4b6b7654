"""The program-type table (ctx layouts checked against UAPI offsets, derived helper sets),
test-run contexts built as BPF_PROG_TEST_RUN builds them, and the bpf_wq kfuncs."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest

from pybpf.asm import assemble_insns
from pybpf.errors import RunInputError, UnsupportedError
from pybpf.helpers import BY_NAME, DEFAULT_HELPERS, PROG_TYPES, build_context, prog_type_info
from pybpf.helpers.progtypes import PT_REGS, SK_BUFF, XDP_MD, convert_ctx_accesses
from pybpf.maps import create_map
from pybpf.memory import Arena
from pybpf.uapi import BpfProgType as T
from tests.helpers_support import Harness

# Offsets and sizes from include/uapi/linux/bpf.h and asm/ptrace.h, measured with offsetof()
# on x86-64 (clang, the installed UAPI headers).
UAPI_OFFSETS = [
    (SK_BUFF, "len", 0, 4),
    (SK_BUFF, "protocol", 16, 4),
    (SK_BUFF, "priority", 32, 4),
    (SK_BUFF, "cb", 48, 20),
    (SK_BUFF, "hash", 68, 4),
    (SK_BUFF, "data", 76, 4),
    (SK_BUFF, "data_end", 80, 4),
    (SK_BUFF, "family", 88, 4),
    (SK_BUFF, "remote_ip6", 100, 16),
    (SK_BUFF, "local_port", 136, 4),
    (SK_BUFF, "data_meta", 140, 4),
    (SK_BUFF, "flow_keys", 144, 8),
    (SK_BUFF, "tstamp", 152, 8),
    (SK_BUFF, "sk", 168, 8),
    (SK_BUFF, "gso_size", 176, 4),
    (SK_BUFF, "tstamp_type", 180, 1),
    (SK_BUFF, "hwtstamp", 184, 8),
    (XDP_MD, "data_meta", 8, 4),
    (XDP_MD, "egress_ifindex", 20, 4),
    (PT_REGS, "rax", 80, 8),
    (PT_REGS, "rdi", 112, 8),
    (PT_REGS, "ss", 160, 8),
]


@pytest.mark.parametrize(("layout", "name", "offset", "size"), UAPI_OFFSETS)
def test_uapi_offsets(layout: object, name: str, offset: int, size: int) -> None:
    f = layout.by_name[name]
    assert (f.offset, f.size) == (offset, size)


def test_struct_sizes() -> None:
    assert (SK_BUFF.size, XDP_MD.size, PT_REGS.size) == (192, 24, 168)
    assert PROG_TYPES[T.PERF_EVENT].ctx.size == 184


def test_layouts_have_no_overlaps_and_fit() -> None:
    for info in PROG_TYPES.values():
        if info.ctx is None:
            continue
        end = 0
        for f in info.ctx.fields:
            assert f.offset >= end, (info.name, f.name)
            end = f.end
        assert end <= info.ctx.size
        assert set(info.ctx.packet_fields) <= {"data", "data_end", "data_meta"}


def test_every_kernel_program_type_has_a_row_named_like_libbpf() -> None:
    assert set(PROG_TYPES) == set(T) - {T.UNSPEC}
    for name in ("xdp", "sched_cls", "socket_filter", "kprobe", "tracepoint", "raw_tracepoint"):
        assert BY_NAME[name].name == name
    for name in ("perf_event", "cgroup_skb", "sk_msg", "syscall", "struct_ops", "tracing", "lsm"):
        assert name in BY_NAME
    assert prog_type_info("BPF_PROG_TYPE_XDP") is PROG_TYPES[T.XDP]
    with pytest.raises(UnsupportedError):
        prog_type_info("no_such_type")


def test_helpers_are_derived_from_declarations() -> None:
    names = {d.name for d in PROG_TYPES[T.XDP].helpers()}
    assert {"xdp_adjust_head", "redirect_map", "map_lookup_elem", "bpf_wq_init"} <= names
    assert "skb_load_bytes" not in names
    tc = {d.name for d in PROG_TYPES[T.SCHED_CLS].helpers()}
    assert {"skb_store_bytes", "l4_csum_replace", "redirect"} <= tc and "xdp_adjust_tail" not in tc
    kprobe = {d.name for d in PROG_TYPES[T.KPROBE].helpers()}
    assert {"get_current_pid_tgid", "probe_read", "perf_event_output"} <= kprobe
    assert "bpf_wq_init" not in kprobe and "skb_load_bytes" not in kprobe
    for info in PROG_TYPES.values():
        assert set(info.helpers()) == set(DEFAULT_HELPERS.allowed(info.prog_type))


def test_ctx_access_rules_spot_checks() -> None:
    data = SK_BUFF.by_name["data"]
    assert data.readable_by(T.SCHED_CLS) and not data.readable_by(T.SOCKET_FILTER)
    assert SK_BUFF.by_name["cb"].writable_by(T.SOCKET_FILTER)
    assert not SK_BUFF.by_name["mark"].writable_by(T.SOCKET_FILTER)
    assert SK_BUFF.by_name["tc_classid"].writable_by(T.SCHED_CLS)
    assert SK_BUFF.field_at(50, 4) is SK_BUFF.by_name["cb"]
    assert SK_BUFF.field_at(181, 1) is None  # padding after tstamp_type
    assert PROG_TYPES[T.CGROUP_SKB].retval == (0, 1) and PROG_TYPES[T.XDP].retval is None


@pytest.fixture
def arena() -> Iterator[Arena]:
    with Arena(1 << 26) as a:
        yield a


ETH_IP = bytes.fromhex("ffffffffffff0200000000010800")
IP = bytes.fromhex("4500001c00010000401100000a0000010a000002") + bytes(8)


def skb_fields(built: object, *names: str) -> tuple[int, ...]:
    raw = built.ctx_bytes()
    return tuple(
        int.from_bytes(raw[SK_BUFF.by_name[n].offset : SK_BUFF.by_name[n].end], "little")
        for n in names
    )


def test_xdp_context(arena: Arena) -> None:
    pkt = ETH_IP + IP
    built = build_context(arena, "xdp", pkt)
    data, data_end, meta, ifindex, rxq, egress = struct.unpack("<6I", built.ctx_bytes())
    assert data_end - data == len(pkt) and meta == data and (ifindex, rxq, egress) == (1, 0, 0)
    assert arena.read(data, len(pkt)) == pkt and built.data_out() == pkt
    assert built.ctx_out() is None


def test_xdp_user_ctx_metadata(arena: Arena) -> None:
    pkt = b"META" + ETH_IP + IP
    ctx = struct.pack("<6I", 4, len(pkt), 0, 0, 0, 0)
    built = build_context(arena, T.XDP, pkt, ctx)
    data, data_end, meta = struct.unpack("<3I", built.ctx_bytes()[:12])
    assert data - meta == 4 and arena.read(meta, 4) == b"META" and data_end - meta == len(pkt)
    assert data - built.packet.hard_start == 256
    assert built.data_out() == pkt
    assert struct.unpack("<6I", built.ctx_out()) == (4, len(pkt), 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("ctx", "data_len", "exc", "code"),
    [
        (struct.pack("<6I", 0, 60, 4, 0, 0, 0), 60, RunInputError, errno.EINVAL),  # data_meta
        (struct.pack("<6I", 5, 60, 0, 0, 0, 0), 60, RunInputError, errno.EINVAL),  # unaligned
        (struct.pack("<6I", 36, 60, 0, 0, 0, 0), 60, RunInputError, errno.EINVAL),  # > 32
        (struct.pack("<6I", 0, 61, 0, 0, 0, 0), 60, RunInputError, errno.EINVAL),  # end > len
        (struct.pack("<6I", 0, 59, 0, 0, 0, 0), 60, RunInputError, errno.EINVAL),  # end < len
        (struct.pack("<6I", 0, 60, 0, 0, 0, 1), 60, RunInputError, errno.EINVAL),  # egress
        (struct.pack("<6I", 0, 60, 0, 0, 1, 0), 60, RunInputError, errno.EINVAL),  # rxq alone
        (struct.pack("<6I", 0, 60, 0, 0, 0, 0) + b"\1", 60, RunInputError, errno.E2BIG),
        (struct.pack("<6I", 0, 60, 0, 99, 0, 0), 60, RunInputError, errno.ENODEV),  # only lo
        (struct.pack("<6I", 0, 60, 0, 1, 1, 0), 60, RunInputError, errno.EINVAL),  # lo: 1 rxq
        (None, 13, RunInputError, errno.EINVAL),  # shorter than an Ethernet header
        (None, 3520 + 17 * 4096 + 1, RunInputError, errno.ENOMEM),  # over MAX_SKB_FRAGS
    ],
)
def test_xdp_refused_inputs(
    arena: Arena, ctx: bytes | None, data_len: int, exc: type, code: int
) -> None:
    with pytest.raises(exc) as info:
        build_context(arena, T.XDP, bytes(data_len), ctx)
    if code:
        assert info.value.errno == code


@pytest.mark.parametrize(
    ("dest", "pkt_type"),
    # lo's broadcast address is all zeros: all-ones is multicast (kernel golden tc_pkt_type).
    [("ffffffffffff", 2), ("01005e000001", 2), ("020000000001", 3), ("000000000000", 0)],
)
def test_skb_pkt_type_from_destination(arena: Arena, dest: str, pkt_type: int) -> None:
    built = build_context(arena, T.SCHED_CLS, bytes.fromhex(dest) + ETH_IP[6:] + IP)
    assert skb_fields(built, "pkt_type") == (pkt_type,)


def test_tc_context(arena: Arena) -> None:
    pkt = ETH_IP + IP
    built = build_context(arena, T.SCHED_CLS, pkt)
    length, proto, ifindex, data, data_end, meta, wire = skb_fields(
        built, "len", "protocol", "ifindex", "data", "data_end", "data_meta", "wire_len"
    )
    assert (length, proto, ifindex, wire) == (len(pkt), 0x0008, 1, 0)  # htons(ETH_P_IP)
    assert data_end - data == len(pkt) and meta == data and arena.read(data, 14) == ETH_IP
    assert built.data_out() == pkt and built.ctx_out() is None
    (sk,) = skb_fields(built, "sk")
    family, src, dst, state, rxq = struct.unpack_from("<4xI16x4s24x4s16xIi", arena.read(sk, 80))
    assert (family, src, dst, state, rxq) == (2, IP[12:16], IP[16:20], 7, -1)


def test_socket_filter_and_cgroup_skb_see_the_network_header(arena: Arena) -> None:
    pkt = ETH_IP + IP
    sf = build_context(arena, T.SOCKET_FILTER, pkt)
    assert skb_fields(sf, "len") == (len(pkt) - 14,)
    assert sf.data_out() == bytes(14) + IP  # the MAC header comes back zeroed
    cg = build_context(arena, T.CGROUP_SKB, pkt)
    data, data_end, family, remote, local = skb_fields(
        cg, "data", "data_end", "family", "remote_ip4", "local_ip4"
    )
    assert arena.read(data, 1) == b"\x45" and data_end == 0  # test_run never sets data_end
    assert (family, remote, local) == (
        2,
        int.from_bytes(IP[16:20], "little"),
        int.from_bytes(IP[12:16], "little"),
    )


def test_skb_protocol_of_802_3_frames(arena: Arena) -> None:
    llc = build_context(arena, T.SCHED_CLS, bytes(12) + b"\x00\x40" + bytes(20))
    ipx = build_context(arena, T.SCHED_CLS, bytes(12) + b"\x00\x40" + b"\xff\xff" + bytes(18))
    assert skb_fields(llc, "protocol") == (0x0400,)  # htons(ETH_P_802_2)
    assert skb_fields(ipx, "protocol") == (0x0100,)  # htons(ETH_P_802_3)


def test_skb_user_ctx_in_and_out(arena: Arena) -> None:
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 8, 0xAB)  # mark
    struct.pack_into("<I", ctx, 32, 3)  # priority
    struct.pack_into("<5I", ctx, 48, 1, 2, 3, 4, 5)  # cb
    pkt = ETH_IP + IP
    built = build_context(arena, T.SCHED_CLS, pkt, bytes(ctx))
    assert skb_fields(built, "mark", "priority", "wire_len") == (0xAB, 3, len(pkt))
    base = built.ctx_addr
    arena.write(base + 8, struct.pack("<I", 0xCD))  # the program sets mark,
    arena.write(base + 44, struct.pack("<I", 9))  # tc_index (not copied back),
    arena.write(base + 48, struct.pack("<I", 77))  # and cb[0]
    out = built.ctx_out()
    assert out is not None and len(out) == 192
    assert struct.unpack_from("<I", out, 8) == (0xCD,)
    assert struct.unpack_from("<I", out, 44) == (0,)
    assert struct.unpack_from("<5I", out, 48) == (77, 2, 3, 4, 5)
    assert struct.unpack_from("<II", out, 36) == (0, 1)  # ingress_ifindex, ifindex


@pytest.mark.parametrize(("offset", "value"), [(0, 1), (16, 8), (44, 1), (76, 1), (180, 1)])
def test_skb_user_ctx_rejects_fields_test_run_does_not_take(
    arena: Arena, offset: int, value: int
) -> None:
    ctx = bytearray(192)
    ctx[offset] = value
    with pytest.raises(RunInputError) as info:
        build_context(arena, T.SCHED_CLS, ETH_IP + IP, bytes(ctx))
    assert info.value.errno == errno.EINVAL


@pytest.mark.parametrize(
    ("ifindex", "code"), [(0, 0), (1, 0), (2, errno.ENODEV), (99, errno.ENODEV)]
)
def test_skb_ctx_ifindex_names_a_device_of_the_test_netns(
    arena: Arena, ifindex: int, code: int
) -> None:
    # test_run looks an ifindex above 1 up; the modelled netns holds only lo (ifindex 1).
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 40, ifindex)
    if code:
        with pytest.raises(RunInputError) as info:
            build_context(arena, T.SCHED_CLS, ETH_IP + IP, bytes(ctx))
        assert info.value.errno == code
    else:
        built = build_context(arena, T.SCHED_CLS, ETH_IP + IP, bytes(ctx))
        assert skb_fields(built, "ifindex") == (1,)


def test_skb_refused_inputs(arena: Arena) -> None:
    for data in (bytes(13), bytes(3713), ETH_IP + bytes(10)):  # short, huge, truncated IPv4
        with pytest.raises(RunInputError):
            build_context(arena, T.SCHED_CLS, data)
    wire = bytearray(192)
    struct.pack_into("<I", wire, 160, 5)  # wire_len below len
    with pytest.raises(RunInputError):
        build_context(arena, T.SCHED_CLS, ETH_IP + IP, bytes(wire))


def test_argument_contexts(arena: Arena) -> None:
    args = struct.pack("<3Q", 1, 2, 3)
    built = build_context(arena, T.RAW_TRACEPOINT, None, args)
    assert built.ctx_bytes() == args and built.ctx_out() is None and built.data_out() is None
    assert build_context(arena, T.RAW_TRACEPOINT).ctx_addr == 0
    with pytest.raises(RunInputError):
        build_context(arena, T.RAW_TRACEPOINT, None, bytes(8 * 13))
    with pytest.raises(RunInputError):
        build_context(arena, T.TRACING, b"data", args)
    sys_ctx = build_context(arena, T.SYSCALL, None, b"\x01\x02\x03")
    arena.write(sys_ctx.ctx_addr, b"\x09")
    assert sys_ctx.ctx_out() == b"\x09\x02\x03"
    kp = build_context(arena, T.KPROBE, None, struct.pack("<Q", 5))
    assert kp.ctx_size == 168 and kp.ctx_bytes()[:8] == struct.pack("<Q", 5)
    with pytest.raises(UnsupportedError):
        build_context(arena, T.CGROUP_SOCK)


@pytest.mark.parametrize("prog_type", [T.SYSCALL, T.RAW_TRACEPOINT])
def test_one_shot_runs_refuse_a_repeat_count(arena: Arena, prog_type: T) -> None:
    # bpf_prog_test_run_syscall / _raw_tp: any test.repeat is EINVAL (pybpf's 1 is one run)
    with pytest.raises(RunInputError) as info:
        build_context(arena, prog_type, None, bytes(8), repeat=2)
    assert info.value.errno == errno.EINVAL
    assert build_context(arena, prog_type, None, bytes(8), repeat=1).ctx_size == 8
    assert build_context(arena, T.XDP, bytes(14), repeat=5).packet is not None


@pytest.mark.parametrize("prog_type", [T.SYSCALL, T.RAW_TRACEPOINT])
def test_one_shot_runs_need_the_ctx_the_program_reaches(arena: Arena, prog_type: T) -> None:
    # ctx_size_in < prog->aux->max_ctx_offset is EINVAL, checked before the run
    insns = assemble_insns("ldxdw %r0, [%r1+16]\nexit\n", "conformance")
    for size in (0, 8, 23):
        with pytest.raises(RunInputError) as info:
            build_context(arena, prog_type, None, bytes(size) or None, insns=insns)
        assert info.value.errno == errno.EINVAL
    assert build_context(arena, prog_type, None, bytes(24), insns=insns).ctx_size == 24


def test_narrow_sk_buff_fields_are_accessed_at_the_kernels_width() -> None:
    # net/core/filter.c bpf_convert_ctx_access: tc_classid (qdisc cb), tc_index and
    # queue_mapping are u16 in the kernel; a constant queue_mapping store >= 0xffff is dropped
    text = """
        stxw [%r1+72], %r2
        ldxw %r0, [%r1+72]
        stw [%r1+12], 0xffff
        stw [%r1+12], 5
        ldxw %r3, [%r1+44]
        stxw [%r1+8], %r2
        ldxh %r4, [%r1+16]
        exit
    """
    insns = assemble_insns(text, "conformance")
    expected = assemble_insns(
        """
        stxh [%r1+72], %r2
        ldxh %r0, [%r1+72]
        ja +0
        sth [%r1+12], 5
        ldxh %r3, [%r1+44]
        stxw [%r1+8], %r2
        ldxh %r4, [%r1+16]
        exit
        """,
        "conformance",
    )
    assert convert_ctx_accesses(insns, T.SCHED_CLS) == expected
    assert convert_ctx_accesses(insns, T.XDP) == insns  # xdp_md has no narrow fields
    narrow = {f.name: f.stored for f in SK_BUFF.fields if f.stored < f.size}
    assert narrow == {
        "queue_mapping": 2, "protocol": 2, "vlan_tci": 2, "vlan_proto": 2,
        "tc_index": 2, "tc_classid": 2, "gso_segs": 2, "gso_size": 2,
    }  # fmt: skip


def test_skb_user_ctx_gso_size_keeps_16_bits(arena: Arena) -> None:
    # convert___skb_to_skb stores __skb->gso_size in shinfo's unsigned short gso_size
    ctx = bytearray(192)
    struct.pack_into("<I", ctx, 176, 0x10005)
    built = build_context(arena, T.SCHED_CLS, ETH_IP + IP, bytes(ctx))
    assert skb_fields(built, "gso_size") == (5,)


def test_free_releases_regions(arena: Arena) -> None:
    before = arena.stats.regions_live
    built = build_context(arena, T.SCHED_CLS, ETH_IP + IP)
    assert arena.stats.regions_live == before + 3
    built.free()
    assert arena.stats.regions_live == before


# -- bpf_wq -----------------------------------------------------------------------------------


def test_workqueue_kfuncs(arena: Arena) -> None:
    h = Harness(arena, T.SCHED_CLS)
    m = create_map(arena, name="wq", map_type="array", key_size=4, value_size=16, max_entries=2)
    mp = h.run.maps.register(m)
    wq = h.call("map_lookup_elem", mp, h.mem(struct.pack("<I", 1)))
    ran: list[tuple[int, int, int]] = []
    cb = h.callback(lambda map_ptr, key, value: ran.append((map_ptr, key, value)) or 0)
    assert h.call("bpf_wq_start", wq, 0) == -errno.EINVAL  # not initialized
    assert h.call("bpf_wq_init", wq, mp, 1) == -errno.EINVAL
    assert h.call("bpf_wq_init", wq, mp, 0) == 0
    assert h.call("bpf_wq_init", wq, mp, 0) == -errno.EBUSY
    assert h.call("bpf_wq_start", wq, 0) == -errno.EINVAL  # no callback
    assert h.call("bpf_wq_set_callback_impl", wq, cb, 1, 0) == -errno.EINVAL
    assert h.call("bpf_wq_set_callback", wq, cb, 0, 0) == 0
    assert h.call("bpf_wq_start", wq, 1) == -errno.EINVAL
    assert h.call("bpf_wq_start", wq, 0) == 0
    assert h.call("bpf_wq_start", wq, 0) == 0  # pending work is queued once
    assert ran == []
    events = h.run.drain_async()
    assert [(e.kind, e.address, e.retval) for e in events] == [("wq", wq, 0)]
    assert len(ran) == 1 and ran[0][0] == mp and ran[0][2] == wq
    assert arena.read(ran[0][1], 4) == struct.pack("<I", 1)
    assert h.run.async_log == events
    assert h.call("bpf_wq_start", wq, 0) == 0 and len(h.run.drain_async()) == 1
