"""The kernel-golden corpus's case table: what `record.py` runs in the kernel.

Place in the test suite: input side of the kernel comparison. `record.py` (run by hand, as
root, on a machine that permits bpf()) loads each case's object with libbpf, applies the map
preparation, runs the steps with BPF_PROG_TEST_RUN and writes `golden/<case>.json`. The
goldens carry every input too, so `test_kernel_golden.py` replays them without this module.

A case is: one object (`<name>.o` beside this file, or a path relative to this directory for
objects not written for the comparison: the examples and the corpus), map preparation applied
from userspace before the first step, and steps run in order on the same loaded object (map
state carries over). Every map the object has is recorded after the last step (see `record.py`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

# Flags of BPF_MAP_UPDATE_ELEM / bpf_map_push_elem (UAPI values).
BPF_ANY, BPF_NOEXIST, BPF_EXIST = 0, 1, 2

# Commands of the command-packet programs (struct cmd in common.h).
OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_ADD, OP_NOEXIST, OP_EXIST = range(6)

SKB_CTX_SIZE = 192  # sizeof(struct __sk_buff)
_SKB_MARK, _SKB_PRIORITY, _SKB_CB = 8, 32, 48


@dataclass(frozen=True)
class Prep:
    """One userspace map operation before the first step.

    op "update": key/value bytes (per-CPU maps: the value every CPU gets); "update_prog":
    a prog-array slot gets program `target`; "update_map": a map-in-map slot gets map
    `target`; "push": a queue/stack value (key unused).
    """

    op: str
    map: str
    key: bytes = b""
    value: bytes = b""
    flags: int = BPF_ANY
    target: str = ""


@dataclass(frozen=True)
class Step:
    """One BPF_PROG_TEST_RUN: program name, data_in, ctx_in (None: not passed), repeat."""

    prog: str
    data: bytes | None = None
    ctx: bytes | None = None
    repeat: int = 1


@dataclass(frozen=True)
class Case:
    name: str
    obj: str
    steps: tuple[Step, ...]
    prepare: tuple[Prep, ...] = field(default=())
    about: str = ""


def u32(v: int) -> bytes:
    return struct.pack("<I", v & 0xFFFFFFFF)


def u64(v: int) -> bytes:
    return struct.pack("<Q", v & 0xFFFFFFFFFFFFFFFF)


def cmds(*items: tuple[int, ...]) -> bytes:
    """Command records (op, key, val); rc starts as 0x55555555 so untouched ones show."""
    out = b""
    for item in items:
        op, key, val = (*item, 0, 0)[:3]
        out += struct.pack("<IIIi", op, key, val & 0xFFFFFFFF, 0x55555555)
    return out


def ip4(text: str) -> bytes:
    return bytes(int(p) for p in text.split("."))


def ip4_val(text: str) -> int:
    """An address as the u32 a program reads from memory holding it in network order."""
    return int.from_bytes(ip4(text), "little")


def lpm_key(prefixlen: int, addr: str) -> bytes:
    return u32(prefixlen) + ip4(addr)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


MAC_A = bytes.fromhex("020000000001")
MAC_B = bytes.fromhex("020000000002")


def eth(proto: int, payload: bytes, dst: bytes = MAC_A, src: bytes = MAC_B) -> bytes:
    return dst + src + struct.pack("!H", proto) + payload


def ipv4(src: str, dst: str, proto: int, payload: bytes, ttl: int = 64) -> bytes:
    hdr = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 0x1234, 0, ttl, proto, 0, ip4(src), ip4(dst)
    )
    hdr = hdr[:10] + struct.pack("!H", _csum(hdr)) + hdr[12:]
    return hdr + payload


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes) -> bytes:
    length = 8 + len(payload)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, length)
    hdr = struct.pack("!HHHH", sport, dport, length, 0)
    check = _csum(pseudo + hdr + payload) or 0xFFFF
    return struct.pack("!HHHH", sport, dport, length, check) + payload


def udp_packet(payload: bytes = b"ping-pong!", dst: bytes = MAC_A) -> bytes:
    inner = udp("192.168.1.10", "10.0.0.1", 40000, 53, payload)
    return eth(0x0800, ipv4("192.168.1.10", "10.0.0.1", 17, inner), dst=dst)


def tcp_packet() -> bytes:
    segment = struct.pack("!HHIIBBHHH", 1234, 80, 1, 0, 0x50, 0x02, 8192, 0, 0)
    return eth(0x0800, ipv4("172.16.0.1", "172.16.0.2", 6, segment))


EXAMPLES = "../../examples/"
CORPUS = "../corpus/"


def echo_packet() -> bytes:
    """A UDP datagram to the echo port (7): xdp_count bounces it."""
    inner = udp("192.168.1.10", "10.0.0.1", 40000, 7, b"echo me")
    return eth(0x0800, ipv4("192.168.1.10", "10.0.0.1", 17, inner))


def arp_frame() -> bytes:
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1) + MAC_B + ip4("10.0.0.2") + bytes(6)
    return eth(0x0806, arp + ip4("10.0.0.1"), dst=b"\xff" * 6)


def skb_ctx(mark: int = 0, priority: int = 0, cb: tuple[int, ...] = ()) -> bytes:
    """A __sk_buff for ctx_in: only the fields BPF_PROG_TEST_RUN accepts as input."""
    ctx = bytearray(SKB_CTX_SIZE)
    struct.pack_into("<I", ctx, _SKB_MARK, mark)
    struct.pack_into("<I", ctx, _SKB_PRIORITY, priority)
    for i, v in enumerate(cb):
        struct.pack_into("<I", ctx, _SKB_CB + 4 * i, v)
    return bytes(ctx)


def nums(x: int, y: int, x32: int, y32: int) -> bytes:
    """struct nums of alu_v4.c with a zeroed output area."""
    return struct.pack("<qqii", x, y, x32, y32) + bytes(20 * 8)


def pattern(n: int, start: int = 0) -> bytes:
    return bytes((start + i * 7) & 0xFF for i in range(n))


def _kv_case(name: str, prog: str, *runs: bytes, prepare: tuple[Prep, ...] = ()) -> Case:
    return Case(name, "maps.o", tuple(Step(prog, data=r) for r in runs), prepare)


U, L, D, A, NX, EX = OP_UPDATE, OP_LOOKUP, OP_DELETE, OP_ADD, OP_NOEXIST, OP_EXIST

CASES: tuple[Case, ...] = (
    # ------------------------------------------------------------------ maps.o
    _kv_case(
        "array_ops",
        "prog_arr",
        cmds((U, 1, 11), (L, 1), (U, 7, 77), (U, 8, 88), (L, 3), (D, 1), (NX, 2, 5), (EX, 2, 6)),
        cmds((A, 2, 4), (L, 2), (A, 9, 1)),
    ),
    _kv_case(
        "percpu_array_ops",
        "prog_pcpu_arr",
        cmds((A, 2, 10), (L, 2), (U, 0, 9), (L, 4), (NX, 1, 1), (D, 0), (L, 0), (EX, 3, 3)),
        prepare=(Prep("update", "pcpu_arr", u32(2), u32(5)),),
    ),
    _kv_case(
        "hash_ops",
        "prog_hash",
        cmds((U, 1, 10), (NX, 1, 11), (EX, 2, 20), (U, 2, 20), (EX, 2, 21), (L, 2), (D, 100)),
        cmds((D, 100), (L, 100), (A, 1, 5), (L, 3), (D, 2), (NX, 2, 22)),
        prepare=(Prep("update", "hash", u32(100), u32(1)),),
    ),
    _kv_case(
        "hash_full_prealloc",
        "prog_hash",
        cmds((U, 7, 7), (U, 8, 8), (U, 9, 9), (U, 1, 100), (EX, 9, 1), (D, 2), (U, 9, 9)),
        prepare=tuple(Prep("update", "hash", u32(k), u32(k * k)) for k in range(1, 7)),
    ),
    _kv_case(
        "hash_full_no_prealloc",
        "prog_hash_np",
        cmds((U, 1, 1), (U, 2, 2), (U, 3, 3), (U, 4, 4), (U, 5, 5), (D, 2), (U, 5, 5), (L, 5)),
    ),
    _kv_case(
        "percpu_hash_ops",
        "prog_pcpu_hash",
        cmds((U, 1, 10), (A, 1, 5), (L, 1), (A, 2, 1), (NX, 3, 3), (D, 4), (L, 4), (EX, 3, 30)),
        prepare=(Prep("update", "pcpu_hash", u32(4), u32(44)),),
    ),
    _kv_case(
        "lru_ops",
        "prog_lru",
        cmds((U, 1, 10), (NX, 1, 11), (EX, 2, 20), (U, 2, 20), (L, 1), (D, 2), (D, 2), (A, 1, 1)),
    ),
    _kv_case(
        "lru_evict",
        "prog_lru_small",
        cmds((U, 1, 1), (U, 2, 2), (U, 3, 3), (U, 4, 4), (L, 1), (U, 5, 5), (U, 6, 6), (L, 1)),
        cmds((L, 1), (L, 2), (L, 3), (L, 4), (L, 5), (L, 6)),
    ),
    _kv_case(
        "lru_percpu_ops",
        "prog_lru_pcpu",
        cmds((U, 1, 10), (A, 1, 5), (L, 1), (NX, 1, 0), (EX, 9, 9), (U, 9, 9), (D, 1), (L, 1)),
    ),
    Case(
        "repeat_counter",
        "maps.o",
        (Step("count_runs", data=bytes(14), repeat=5), Step("count_runs", data=bytes(14))),
        (Prep("update", "arr", u32(0), u32(100)),),
        "repeat=N runs the program N times on the same maps",
    ),
    # ------------------------------------------------------------------ special_maps.o
    Case(
        "lpm_trie",
        "special_maps.o",
        (
            Step(
                "lpm_lookup",
                data=cmds(
                    (0, 32, ip4_val("10.1.2.3")),
                    (0, 32, ip4_val("10.1.9.9")),
                    (0, 32, ip4_val("10.9.9.9")),
                    (0, 32, ip4_val("192.168.1.1")),
                    (1, 16, ip4_val("192.168.0.0")),
                    (0, 32, ip4_val("192.168.1.1")),
                    (2, 16, ip4_val("10.1.0.0")),
                    (0, 32, ip4_val("10.1.9.9")),
                ),
            ),
            Step(
                "lpm_lookup",
                data=cmds(
                    (2, 16, ip4_val("10.1.0.0")),
                    (0, 24, ip4_val("10.1.2.0")),
                    (0, 7, ip4_val("10.0.0.0")),
                    (1, 33, ip4_val("1.2.3.4")),
                    (1, 32, ip4_val("10.1.2.3")),
                    (0, 32, ip4_val("10.1.2.3")),
                ),
            ),
        ),
        (
            Prep("update", "routes", lpm_key(8, "10.0.0.0"), u32(1)),
            Prep("update", "routes", lpm_key(16, "10.1.0.0"), u32(2)),
            Prep("update", "routes", lpm_key(24, "10.1.2.0"), u32(3)),
            Prep("update", "routes", lpm_key(0, "0.0.0.0"), u32(4)),
        ),
    ),
    Case(
        "queue",
        "special_maps.o",
        (
            Step(
                "queue_ops",
                data=cmds((0, 0, 1), (0, 0, 2), (0, 0, 3), (2,), (0, 0, 4), (0, 0, 5), (1,)),
            ),
            Step(
                "queue_ops",
                data=cmds((0, 0, 6), (0, 0, 7), (0, BPF_EXIST, 8), (0, 3, 9), (2,), (1,)),
            ),
        ),
        (Prep("push", "fifo", value=u32(0xAA)),),
        "leftover elements are drained with pop after the run",
    ),
    Case(
        "stack",
        "special_maps.o",
        (
            Step(
                "stack_ops",
                data=cmds((0, 0, 1), (0, 0, 2), (0, 0, 3), (2,), (0, 0, 4), (0, 0, 5), (1,)),
            ),
            Step(
                "stack_ops",
                data=cmds((0, 0, 6), (0, 0, 7), (0, BPF_EXIST, 8), (1,), (1,), (1,), (1,), (1,)),
            ),
        ),
        (Prep("push", "lifo", value=u32(0xBB)),),
    ),
    Case(
        "bloom_filter",
        "special_maps.o",
        (
            Step(
                "bloom_ops",
                data=cmds((0, 0, 1), (0, 0, 3), (0, 0, 5), (0, 0, 1000), (1, 0, 1), (1, 0, 3)),
            ),
            Step(
                "bloom_ops", data=cmds(*((1, 0, v) for v in (2, 4, 5, 6, 999, 1000, 77, 1 << 31)))
            ),
        ),
        (Prep("push", "bloom", value=u32(77)),),
        "BPF_F_ZERO_SEED makes false positives reproducible",
    ),
    Case(
        "ringbuf",
        "special_maps.o",
        (
            Step("ringbuf_ops", data=cmds((0, 0, 10), (1, 0, 11), (2, 0, 12), (0, 0, 13))),
            Step("ringbuf_ops", data=cmds((1, 0, 20), (1, 0, 21))),
            Step("ringbuf_sizes", data=cmds((0, 0, 1), (0, 0, 7), (0, 0, 8), (0, 0, 64), (0,))),
        ),
        about="records are consumed after the last step; discarded ones never show",
    ),
    Case(
        "ringbuf_full",
        "special_maps.o",
        (Step("ringbuf_sizes", data=cmds(*[(0, 0, 64)] * 8), repeat=8),),
        about="4096-byte ring: 64 records of 72 bytes do not fit, output fails with -EAGAIN",
    ),
    # ------------------------------------------------------------------ globals.o
    Case(
        "global_data",
        "globals.o",
        (
            Step("use_globals", data=bytes([1, 2, 0, 0]) + bytes(10)),
            Step("use_globals", data=bytes([6, 13, 0, 0]) + bytes(10), repeat=3),
        ),
    ),
    Case(
        "bpf_loop",
        "globals.o",
        (
            Step("use_loop", data=bytes([10, 255]) + bytes(14)),
            Step("use_loop", data=bytes([10, 4]) + bytes(14)),
            Step("use_loop", data=bytes([0, 4]) + bytes(14)),
            Step("use_loop", data=bytes([40, 100]) + bytes(14)),
        ),
    ),
    Case(
        "for_each_map_elem",
        "globals.o",
        (
            Step("use_for_each", data=bytes(32)),
            Step("use_for_each", data=bytes([0, 3]) + bytes(30)),
        ),
        (
            *(Prep("update", "weights", u32(k), u64(k * 10)) for k in (1, 2, 3, 9)),
            Prep("update", "slots", u32(2), u64(5)),
            Prep("update", "slots", u32(5), u64(50)),
        ),
        "the hash walk is never cut short: its order is the kernel's bucket order",
    ),
    # ------------------------------------------------------------------ tailcalls.o
    Case(
        "tail_calls",
        "tailcalls.o",
        (
            Step("entry", data=bytes([0, 0]) + bytes(12)),
            Step("entry", data=bytes([2, 0]) + bytes(12)),
            Step("entry", data=bytes([1, 0]) + bytes(12)),
            Step("entry", data=bytes([9, 0]) + bytes(12)),
        ),
        about="prog array filled by the loader from the .values initializer",
    ),
    Case(
        "tail_call_limit",
        "tailcalls.o",
        (Step("self_loop", data=bytes(14)),),
        (Prep("update_prog", "loop_jumps", u32(0), target="self_loop"),),
        "a program tail-calling itself stops at the kernel's MAX_TAIL_CALL_CNT",
    ),
    Case(
        "tail_call_userspace",
        "tailcalls.o",
        (
            Step("entry", data=bytes([1, 0]) + bytes(12)),
            Step("entry", data=bytes([0, 0]) + bytes(12)),
        ),
        (
            Prep("update_prog", "jumps", u32(1), target="tail_b"),
            Prep("update_prog", "jumps", u32(0), target="tail_b"),
        ),
        "userspace replaces and adds prog-array slots",
    ),
    # ------------------------------------------------------------------ tailcall_subprog.o
    Case(
        "tail_call_subprog",
        "tailcall_subprog.o",
        tuple(
            Step("sub_entry", data=bytes([slot, which]) + bytes(12))
            for slot, which in ((0, 0), (1, 0), (0, 1), (1, 1), (2, 0), (3, 0), (3, 1), (9, 0))
        ),
        about="a tail call inside a static or global subprogram returns the target's r0 to "
        "the subprogram's caller; an empty slot lets the subprogram continue",
    ),
    Case(
        "tail_call_subprog_limit",
        "tailcall_subprog.o",
        (Step("sub_loop", data=bytes(14)), Step("main_then_sub", data=bytes(14))),
        (Prep("update_prog", "loop_jumps", u32(0), target="sub_loop"),),
        "tail calls from subprograms count toward one MAX_TAIL_CALL_CNT per run",
    ),
    Case(
        "map_in_map",
        "map_in_map.o",
        (
            Step(
                "map_in_map",
                data=cmds((0, 0, 5), (0, 1, 7), (0, 2, 1), (1, 7, 3), (1, 1, 2), (0, 1, 10)),
            ),
        ),
    ),
    Case(
        "map_in_map_userspace",
        "map_in_map.o",
        (Step("map_in_map", data=cmds((0, 2, 1), (1, 1, 2), (1, 7, 4), (0, 0, 8))),),
        (
            Prep("update_map", "outer_arr", u32(2), target="inner_a"),
            Prep("update_map", "outer_hash", u32(1), target="inner_a"),
            Prep("update", "inner_a", u32(0), u32(100)),
        ),
    ),
    # ------------------------------------------------------------------ xdp.o
    Case(
        "xdp_reflect",
        "xdp.o",
        (
            Step("reflect", data=udp_packet()),
            Step("reflect", data=tcp_packet()),
            Step("reflect", data=eth(0x0806, bytes(28))),
            Step("reflect", data=eth(0x0800, bytes(6))),
            Step("reflect", data=udp_packet(b"x" * 100), repeat=2),
        ),
    ),
    Case(
        "xdp_adjust_head",
        "xdp.o",
        (
            Step("resize", data=bytes([0, 8]) + pattern(30, 2)),
            Step("resize", data=bytes([1, 4]) + pattern(30, 2)),
            Step("resize", data=bytes([0, 0]) + pattern(30, 2)),
            Step("resize", data=bytes([1, 20]) + pattern(30, 2)),
            Step("resize", data=bytes([0, 255]) + pattern(30, 2)),
            Step("resize", data=bytes([0, 4]) + pattern(30, 2), repeat=3),
        ),
        about="pushes, pops, limits (ETH_HLEN left, headroom) and a repeated push",
    ),
    Case(
        "xdp_adjust_tail",
        "xdp.o",
        (
            Step("resize", data=bytes([2, 16]) + pattern(30, 3)),
            Step("resize", data=bytes([3, 10]) + pattern(38, 3)),
            Step("resize", data=bytes([3, 30]) + pattern(38, 3)),
            Step("resize", data=bytes([2, 255]) + pattern(3400, 3)),
            Step("resize", data=bytes([2, 200]) + pattern(62, 3)),
            Step("resize", data=bytes([3, 2]) + pattern(30, 3), repeat=3),
        ),
        about="grow (new bytes zeroed), shrink, limits (ETH_HLEN, frame tailroom), repeat",
    ),
    Case("xdp_encap", "xdp.o", (Step("encap", data=udp_packet()),)),
    Case(
        "xdp_csum_diff",
        "xdp.o",
        (
            Step("csum", data=pattern(40, 1)),
            Step("csum", data=bytes(16) + u32(0xFFFFFFFF) + bytes(20)),
        ),
    ),
    # ------------------------------------------------------------------ skb.o
    Case(
        "socket_filter_fields",
        "skb.o",
        (
            Step("sf_fields", data=udp_packet(), ctx=skb_ctx(7, 3, (1, 2, 3, 4, 5))),
            Step("sf_fields", data=eth(0x86DD, pattern(10))),
            Step("sf_fields", data=eth(0x86DD, pattern(40))),
        ),
        about="socket filters see the packet from the network header; IPv6 needs a full header",
    ),
    Case(
        "socket_filter_load",
        "skb.o",
        (Step("sf_load", data=udp_packet(), ctx=skb_ctx()),),
        about="bpf_skb_load_bytes and LD_ABS/LD_IND",
    ),
    Case(
        "tc_pkt_type",
        "skb.o",
        tuple(
            Step("tc_fields", data=udp_packet(dst=bytes.fromhex(dest)), ctx=skb_ctx())
            for dest in ("000000000000", "01005e000001", "ffffffffffff")
        ),
        about="test_run's device is lo, whose broadcast address is all zeros: no frame is "
        "PACKET_BROADCAST, all-ones is PACKET_MULTICAST (the last step's shows in seen[2])",
    ),
    Case(
        "tc_fields",
        "skb.o",
        (
            Step("tc_fields", data=udp_packet(), ctx=skb_ctx(5, 9, (0xA0, 0, 0, 0, 0))),
            Step("tc_fields", data=tcp_packet(), ctx=skb_ctx(0, 0, (0, 0, 1, 0, 0))),
            Step("tc_fields", data=udp_packet(), repeat=2),
        ),
    ),
    Case(
        "tc_nat",
        "skb.o",
        (Step("tc_nat", data=udp_packet(), ctx=skb_ctx(1)), Step("tc_nat", data=tcp_packet())),
        about="skb_store_bytes + l3/l4_csum_replace keep both checksums valid",
    ),
    Case("tc_store_bytes", "skb.o", (Step("tc_store", data=udp_packet(), ctx=skb_ctx()),)),
    Case(
        "skb_input_refusals",
        "skb.o",
        (
            Step("tc_store", data=udp_packet()[:13]),
            Step("tc_store", data=udp_packet(), ctx=u32(60) + skb_ctx()[4:]),
            Step("tc_store", data=udp_packet(), ctx=skb_ctx()[:44] + u32(1) + skb_ctx()[48:]),
            Step("tc_store", data=udp_packet(), ctx=skb_ctx(mark=3)[:20]),
            Step("tc_store", data=udp_packet(), ctx=skb_ctx() + bytes(8)),
            Step("tc_store", data=udp_packet(), ctx=skb_ctx() + u32(1)),
            Step("sf_load", data=udp_packet(), ctx=skb_ctx(cb=(9,))),
        ),
        about="inputs BPF_PROG_TEST_RUN refuses (or accepts) for skb programs",
    ),
    Case(
        "skb_ctx_unknown_ifindex",
        "skb.o",
        (
            Step("tc_store", data=udp_packet(), ctx=skb_ctx()[:40] + u32(99) + skb_ctx()[44:]),
            Step("tc_store", data=udp_packet(), ctx=skb_ctx()[:40] + u32(1) + skb_ctx()[44:]),
        ),
        about="__sk_buff.ifindex in ctx_in names the device; 1 is loopback, 99 does not exist",
    ),
    Case(
        "xdp_input_refusals",
        "xdp.o",
        (
            Step("reflect", data=bytes(13)),
            Step("reflect", data=bytes(14)),
            Step("reflect", data=pattern(3500)),
            Step("reflect"),
        ),
        about="packet size limits of an XDP test run",
    ),
    Case(
        "xdp_multi_buffer",
        "xdp.o",
        (Step("reflect", data=udp_packet(pattern(4000))), Step("resize", data=pattern(5000))),
        about="past 3520 linear bytes the kernel puts the rest of the packet in fragments",
    ),
    # ------------------------------------------------------------------ syscall.o
    Case(
        "syscall_multiply",
        "syscall.o",
        (
            Step("multiply", ctx=struct.pack("<IIQi12s", 6, 7, 0, 0, b"")),
            Step("multiply", ctx=struct.pack("<IIQi12s", 6, 9, 0, 0, b"")),
            Step("multiply", ctx=struct.pack("<IIQi12s", 3, 1 << 31, 0, 0, b"")),
        ),
    ),
    Case(
        "syscall_input_refusals",
        "syscall.o",
        (
            Step("multiply", data=bytes(16), ctx=struct.pack("<IIQi12s", 4, 4, 0, 0, b"")),
            Step("multiply", ctx=struct.pack("<IIQi", 4, 4, 0, 0)),
            Step("multiply"),
            Step("multiply", ctx=struct.pack("<IIQi12s", 5, 5, 0, 0, b"")),
        ),
        about="syscall programs take no data and need the context their accesses reach",
    ),
    Case(
        "syscall_repeat_refused",
        "syscall.o",
        (
            Step("multiply", ctx=struct.pack("<IIQi12s", 4, 4, 0, 0, b""), repeat=2),
            Step("multiply", ctx=struct.pack("<IIQi12s", 5, 5, 0, 0, b"")),
        ),
        about="BPF_PROG_TEST_RUN refuses repeat for syscall programs",
    ),
    Case(
        "syscall_reverse",
        "syscall.o",
        (
            Step("reverse", ctx=(bytes([5]) + b"hello").ljust(64, b".")),
            Step("reverse", ctx=(bytes([63]) + pattern(63)).ljust(64, b".")),
            Step("reverse", ctx=bytes([0]).ljust(64, b".")),
            Step("reverse", ctx=bytes([64]).ljust(64, b".")),
        ),
    ),
    # ------------------------------------------------------------------ alu_v4.o
    Case(
        "alu_v4_signed",
        "alu_v4.o",
        (
            Step("signed_ops", ctx=nums(-7, 2, -7, 2)),
            Step("signed_ops", ctx=nums(0x1234_5678_9ABC_DEF0, 0, 1 << 20, 0)),
            Step("signed_ops", ctx=nums(-(1 << 63), -1, -(1 << 31), -1)),
            Step("signed_ops", ctx=nums(-0xFF80, 0x1_8000_FF81, -200, 0x18081)),
        ),
        about="division by zero, INT_MIN / -1, sign extensions and byte swaps",
    ),
    Case(
        "alu_v4_atomics",
        "alu_v4.o",
        (Step("atomics", ctx=nums(0x1234, 0, 5, 0)), Step("atomics", ctx=nums(-1, 0, -100, 0))),
    ),
    # ------------------------------------------------------- objects not written for this
    Case(
        "example_xdp_count",
        EXAMPLES + "xdp_count.o",
        (
            Step("xdp_count", data=udp_packet()),
            Step("xdp_count", data=echo_packet()),
            Step("xdp_count", data=tcp_packet(), repeat=3),
            Step("xdp_count", data=arp_frame()),
            Step("xdp_count", data=udp_packet()[:10]),
            Step("xdp_count", data=udp_packet()[:30]),
            Step("xdp_count", data=eth(0x0800, ipv4("10.1.1.1", "10.1.1.2", 17, b"abc", ttl=1))),
            Step("xdp_count", data=eth(0x0800, ipv4("10.1.1.1", "10.1.1.2", 47, bytes(8)))),
            Step("xdp_count", data=echo_packet()[:38]),
        ),
    ),
    Case(
        "example_tc_mark",
        EXAMPLES + "tc_mark.o",
        (
            Step("tc_mark", data=udp_packet(), ctx=skb_ctx(mark=5, priority=1)),
            Step("tc_mark", data=eth(0x0800, ipv4("1.2.3.4", "5.6.7.8", 6, b"", ttl=9))),
            Step("tc_mark", data=arp_frame(), ctx=skb_ctx()),
            Step("tc_mark", data=udp_packet(dst=b"\xff" * 6), ctx=skb_ctx(cb=(7, 7))),
            Step("tc_mark", data=udp_packet()[:30], ctx=skb_ctx()),
            Step("tc_mark", data=tcp_packet(), ctx=skb_ctx(mark=1), repeat=2),
        ),
    ),
    Case(
        "example_queue_ringbuf",
        EXAMPLES + "queue_ringbuf.o",
        (
            Step("drain", ctx=struct.pack("<II", 2, 99)),
            Step("drain", ctx=struct.pack("<II", 0, 99)),
            Step("drain", ctx=struct.pack("<II", 3, 0)),
            Step("drain", ctx=struct.pack("<II", 5, 0)),
        ),
        prepare=tuple(Prep("push", "jobs", value=u32(v)) for v in (3, 70000, 5, 0, 11)),
    ),
    Case(
        "example_loop_globals",
        EXAMPLES + "loop_globals.o",
        tuple(Step("fib", ctx=u32(n)) for n in (10, 100, 0, 1, 32, 2)),
        about="bpf_loop over .bss, a .data counter, a .rodata cap",
    ),
    Case(
        "corpus_globals",
        CORPUS + "globals.o",
        (
            Step("account", data=udp_packet()),
            Step("account", data=arp_frame(), repeat=3),
            Step("account", data=udp_packet(pattern(1200))),
            Step("account", data=udp_packet(pattern(300)), ctx=skb_ctx(mark=2)),
            Step("account", data=udp_packet()[:14]),
        ),
        about="every kind of global: .data/.bss/.rodata and custom sections, static and hidden",
    ),
    Case(
        "corpus_subprogs",
        CORPUS + "subprogs.o",
        (
            Step("classify", data=udp_packet(), ctx=skb_ctx(mark=9)),
            Step("classify", data=tcp_packet()),
            Step("classify", data=udp_packet(pattern(200)), repeat=2),
            Step("classify", data=arp_frame()[:14]),
            Step("tail_stage1", data=udp_packet()),
            Step("tail_stage2", data=tcp_packet(), ctx=skb_ctx(mark=12345)),
            Step("xdp_mix", data=udp_packet()),
            Step("xdp_mix", data=arp_frame()),
        ),
        prepare=(
            Prep("update", "values", u32(3), u64(1000)),
            Prep("update", "values", u32(15), u64(-7)),
            Prep("update_prog", "jump_table", u32(0), target="tail_stage1"),
            Prep("update_prog", "jump_table", u32(1), target="tail_stage2"),
        ),
        about="24 subprograms, global functions, bpf_loop, for_each_map_elem and tail calls",
    ),
)
