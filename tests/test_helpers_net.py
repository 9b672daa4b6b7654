"""Packet helpers on test-run contexts: skb byte access, checksum updates checked against an
independent RFC 1071 computation, XDP head/tail/meta limits, and redirects."""

from __future__ import annotations

import errno
import struct
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pybpf.helpers import BuiltContext, RedirectRecord, build_context
from pybpf.memory import Arena
from pybpf.uapi import BpfMapType
from pybpf.uapi import BpfProgType as T
from tests.helpers_support import Harness

BPF_F_PSEUDO_HDR, BPF_F_MARK_MANGLED_0, BPF_F_MARK_ENFORCE = 0x10, 0x20, 0x40


def rfc1071(data: bytes) -> int:
    """The Internet checksum as stored in a header (a big-endian 16-bit number)."""
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4_header(src: bytes, dst: bytes, ttl: int = 64, proto: int = 17, length: int = 28) -> bytes:
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 1, 0, ttl, proto, 0, src, dst)
    return hdr[:10] + rfc1071(hdr).to_bytes(2, "big") + hdr[12:]


def udp_packet(src: bytes, dst: bytes, payload: bytes = b"data") -> bytes:
    length = 8 + len(payload)
    udp = struct.pack("!HHHH", 1234, 80, length, 0) + payload
    pseudo = src + dst + struct.pack("!BBH", 0, 17, length)
    udp = udp[:6] + rfc1071(pseudo + udp).to_bytes(2, "big") + udp[8:]
    eth = bytes(6) + bytes.fromhex("020000000001") + b"\x08\x00"
    return eth + ipv4_header(src, dst, length=20 + length) + udp


SRC, DST = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
PKT = udp_packet(SRC, DST)
IP_CSUM, UDP_CSUM = 14 + 10, 14 + 20 + 6


@pytest.fixture
def arena() -> Iterator[Arena]:
    with Arena(1 << 26) as a:
        yield a


def harness(
    arena: Arena, prog_type: T, data: bytes, ctx: bytes | None = None
) -> tuple[Harness, BuiltContext]:
    built = build_context(arena, prog_type, data, ctx)
    h = Harness(arena, prog_type)
    built.attach(h.run)
    return h, built


def le(b: bytes) -> int:
    return int.from_bytes(b, "little")


# -- skb bytes --------------------------------------------------------------------------------


def test_skb_load_bytes(arena: Arena) -> None:
    h, _ = harness(arena, T.SCHED_CLS, PKT)
    buf = h.mem(b"\xaa" * 8)
    assert h.call("skb_load_bytes", h.run.ctx_addr, 12, buf, 2) == 0
    assert h.read(buf, 2) == b"\x08\x00"
    assert h.call("skb_load_bytes", h.run.ctx_addr, len(PKT) - 4, buf, 8) == -errno.EFAULT
    assert h.read(buf, 8) == bytes(8)
    assert h.call("skb_load_bytes", h.run.ctx_addr, 1 << 31, buf, 1) == -errno.EFAULT


def test_skb_load_bytes_is_relative_to_network_header_for_socket_filters(arena: Arena) -> None:
    h, _ = harness(arena, T.SOCKET_FILTER, PKT)
    buf = h.mem(bytes(1))
    assert h.call("skb_load_bytes", h.run.ctx_addr, 0, buf, 1) == 0
    assert h.read(buf, 1) == b"\x45"
    assert h.call("skb_load_bytes", h.run.ctx_addr, len(PKT) - 14, buf, 1) == -errno.EFAULT


def test_skb_store_bytes(arena: Arena) -> None:
    h, built = harness(arena, T.SCHED_CLS, PKT)
    src = h.mem(b"\x11\x22\x33\x44\x55\x66")
    assert h.call("skb_store_bytes", h.run.ctx_addr, 0, src, 6, 1) == 0  # RECOMPUTE_CSUM ok
    assert built.data_out() == b"\x11\x22\x33\x44\x55\x66" + PKT[6:]
    assert h.call("skb_store_bytes", h.run.ctx_addr, 0, src, 6, 4) == -errno.EINVAL
    assert h.call("skb_store_bytes", h.run.ctx_addr, len(PKT) - 2, src, 6, 0) == -errno.EFAULT


# -- checksums --------------------------------------------------------------------------------


def test_l3_csum_replace_sizes_2_and_4(arena: Arena) -> None:
    h, built = harness(arena, T.SCHED_CLS, PKT)
    data = h.run.packet.data
    old_word = h.read(data + 14 + 8, 2)  # ttl, protocol
    new_word = bytes([63]) + old_word[1:]
    assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, le(old_word), le(new_word), 2) == 0
    arena.write(data + 14 + 8, new_word)
    new_dst = bytes([192, 168, 7, 9])
    assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, le(DST), le(new_dst), 4) == 0
    arena.write(data + 14 + 16, new_dst)
    ip = built.data_out()[14:34]
    assert ip[10:12] == rfc1071(ip[:10] + b"\0\0" + ip[12:]).to_bytes(2, "big")
    assert rfc1071(ip) == 0


def test_l3_csum_replace_by_diff_with_csum_diff(arena: Arena) -> None:
    h, built = harness(arena, T.SCHED_CLS, PKT)
    data = h.run.packet.data
    old, new = h.mem(SRC), h.mem(bytes([172, 16, 0, 99]))
    diff = h.call("csum_diff", old, 4, new, 4, 0)
    assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, 0, diff, 0) == 0
    arena.write(data + 14 + 12, bytes([172, 16, 0, 99]))
    assert rfc1071(built.data_out()[14:34]) == 0
    assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, 1, diff, 0) == -errno.EINVAL


def test_l4_csum_replace_with_pseudo_header(arena: Arena) -> None:
    h, built = harness(arena, T.SCHED_CLS, PKT)
    data = h.run.packet.data
    new_dst = bytes([8, 8, 4, 4])
    flags = BPF_F_PSEUDO_HDR | 4
    assert h.call("l4_csum_replace", h.run.ctx_addr, UDP_CSUM, le(DST), le(new_dst), flags) == 0
    assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, le(DST), le(new_dst), 4) == 0
    arena.write(data + 14 + 16, new_dst)
    assert built.data_out() == udp_packet(SRC, new_dst)
    port = h.read(data + 14 + 20 + 2, 2)
    new_port = (8080).to_bytes(2, "big")
    assert h.call("l4_csum_replace", h.run.ctx_addr, UDP_CSUM, le(port), le(new_port), 2) == 0
    arena.write(data + 14 + 20 + 2, new_port)
    udp = built.data_out()[34:]
    pseudo = SRC + new_dst + struct.pack("!BBH", 0, 17, len(udp))
    assert rfc1071(pseudo + udp) == 0


def test_l4_csum_mangled_zero(arena: Arena) -> None:
    pkt = PKT[:UDP_CSUM] + b"\0\0" + PKT[UDP_CSUM + 2 :]
    h, built = harness(arena, T.SCHED_CLS, pkt)
    ctx = h.run.ctx_addr
    assert h.call("l4_csum_replace", ctx, UDP_CSUM, 0, 0, BPF_F_MARK_MANGLED_0) == 0
    assert built.data_out() == pkt  # a zero (absent) UDP checksum is left alone
    flags = BPF_F_MARK_MANGLED_0 | BPF_F_MARK_ENFORCE
    assert h.call("l4_csum_replace", ctx, UDP_CSUM, 0, 0, flags) == 0
    assert built.data_out()[UDP_CSUM : UDP_CSUM + 2] == b"\xff\xff"


@pytest.mark.parametrize(
    ("helper", "offset", "flags", "expected"),
    [
        ("l3_csum_replace", IP_CSUM, 0x10, -errno.EINVAL),  # PSEUDO_HDR is l4-only
        ("l3_csum_replace", IP_CSUM, 3, -errno.EINVAL),
        ("l3_csum_replace", IP_CSUM + 1, 2, -errno.EFAULT),  # odd offset
        ("l3_csum_replace", len(PKT) - 1, 2, -errno.EFAULT),
        ("l4_csum_replace", 0x10000, 2, -errno.EFAULT),
        ("l4_csum_replace", UDP_CSUM, 0x100, -errno.EINVAL),
        ("l4_csum_replace", UDP_CSUM, 0x80 | 2, 0),  # BPF_F_IPV6 is accepted
    ],
)
def test_csum_replace_errors(
    arena: Arena, helper: str, offset: int, flags: int, expected: int
) -> None:
    h, _ = harness(arena, T.SCHED_CLS, PKT)
    assert h.call(helper, h.run.ctx_addr, offset, 0, 0, flags) == expected


def test_csum_diff_values(arena: Arena) -> None:
    # Since Linux 6.12 every result is folded to 16 bits (csum_from32to16, not complemented)
    # and sizes need not be multiples of 4 nor fit a 512-byte scratch buffer.
    h = Harness(arena, T.XDP)
    word = h.mem(bytes([1, 2, 3, 4]))
    assert h.call("csum_diff", 0, 0, word, 4, 0) == 0x0604  # 0x0403 + 0x0201
    assert h.call("csum_diff", word, 4, 0, 0, 0) == 0xF9FB  # fold of ~0x04030201
    assert h.call("csum_diff", word, 4, word, 4, 0) == 0xFFFF  # x + ~x is -0
    assert h.call("csum_diff", 0, 0, word, 4, 0xFFFFFFFF) == 0x0604  # end-around carry
    assert h.call("csum_diff", word, 3, 0, 0, 0) == 0xFDFB  # tail bytes zero-padded
    assert h.call("csum_diff", 0, 0, 0, 0, 0x12345678) == 0x68AC  # the seed alone is folded too
    # Answers of the 6.18 kernel (BPF_PROG_TEST_RUN of an XDP probe) on bytes (7i + 3) & 0xff:
    pattern = h.mem(bytes((i * 7 + 3) & 0xFF for i in range(1024)))
    assert h.call("csum_diff", pattern, 0, pattern, 6, 0) == 0x4833
    assert h.call("csum_diff", pattern, 4, 0, 0, 0xFFFFFFFF) == 0xDDEB
    assert h.call("csum_diff", 0, 0, pattern, 1024, 0) == 0x00FF
    assert h.call("csum_diff", pattern, 600, pattern, 600, 0) == 0xFFFF
    assert h.call("csum_diff", pattern, 8, pattern + 8, 8, 0) == 0xE0E0
    assert h.call("csum_diff", pattern, 3, 0, 0, 0) == 0xF5EB
    assert h.call("csum_diff", 0, 0, 0, 0, 0xFFFF0000) == 0xFFFF
    assert h.call("csum_diff", pattern + 1, 5, pattern + 9, 7, 0xABCDEF01) == 0x70E4


@settings(max_examples=60, deadline=None)
@given(
    old=st.binary(max_size=40),
    new=st.binary(max_size=40),
    seed=st.integers(0, 0xFFFFFFFF),
)
def test_csum_diff_is_the_folded_ones_complement_difference(
    old: bytes, new: bytes, seed: int
) -> None:
    with Arena(1 << 24) as a:
        h = Harness(a, T.XDP)
        src, dst = (h.mem(b) if b else 0 for b in (old, new))
        got = h.call("csum_diff", src, len(old), dst, len(new), seed)

    def words(b: bytes) -> int:
        b += bytes(-len(b) % 4)
        return sum(int.from_bytes(b[i : i + 4], "little") for i in range(0, len(b), 4))

    expected = (seed + words(new) - words(old)) % 0xFFFF
    assert 0 <= got <= 0xFFFF and got % 0xFFFF == expected


@settings(max_examples=60, deadline=None)
@given(
    ttl=st.integers(1, 255),
    old=st.binary(min_size=4, max_size=4),
    new=st.binary(min_size=4, max_size=4),
)
def test_l3_replace4_matches_recomputed_checksum(ttl: int, old: bytes, new: bytes) -> None:
    with Arena(1 << 24) as arena:
        pkt = bytes(12) + b"\x08\x00" + ipv4_header(old, DST, ttl=ttl) + bytes(8)
        h, built = harness(arena, T.SCHED_CLS, pkt)
        assert h.call("l3_csum_replace", h.run.ctx_addr, IP_CSUM, le(old), le(new), 4) == 0
        arena.write(h.run.packet.data + 14 + 12, new)
        ip = built.data_out()[14:34]
        assert int.from_bytes(ip[10:12], "big") == rfc1071(ip[:10] + b"\0\0" + ip[12:])


# -- XDP --------------------------------------------------------------------------------------


def xdp_fields(h: Harness) -> tuple[int, int, int]:
    return struct.unpack("<III", h.read(h.run.ctx_addr, 12))


def test_xdp_adjust_head_limits(arena: Arena) -> None:
    pkt = bytes(range(60))
    h, built = harness(arena, T.XDP, pkt)
    p = h.run.packet
    assert p is not None and p.data - p.hard_start == 256
    ctx = h.run.ctx_addr
    assert h.call("xdp_adjust_head", ctx, -217) == -errno.EINVAL  # into struct xdp_frame
    assert h.call("xdp_adjust_head", ctx, 47) == -errno.EINVAL  # fewer than 14 bytes left
    assert h.call("xdp_adjust_head", ctx, 46) == 0
    assert built.data_out() == pkt[46:]
    assert h.call("xdp_adjust_head", ctx, -46 - 216) == 0
    data, data_end, meta = xdp_fields(h)
    assert data == p.hard_start + 40 and data_end - data == 60 + 216 and meta == data
    assert built.data_out() == bytes(216) + pkt  # headroom is zeroed memory


def test_xdp_adjust_tail_limits(arena: Arena) -> None:
    pkt = bytes(range(60))
    h, built = harness(arena, T.XDP, pkt)
    ctx = h.run.ctx_addr
    assert h.call("xdp_adjust_tail", ctx, -47) == -errno.EINVAL  # below ETH_HLEN
    assert h.call("xdp_adjust_tail", ctx, -46) == 0 and built.data_out() == pkt[:14]
    assert h.call("xdp_adjust_tail", ctx, 46) == 0 and built.data_out() == pkt[:14] + bytes(46)
    room = 4096 - 320 - 256 - 60  # frame size - skb_shared_info - headroom - packet
    assert h.call("xdp_adjust_tail", ctx, room + 1) == -errno.EINVAL
    assert h.call("xdp_adjust_tail", ctx, room) == 0
    assert xdp_fields(h)[1] == h.run.packet.hard_end


BIG = bytes((i * 13 + 5) & 0xFF for i in range(5000))


def test_xdp_multi_buffer_layout(arena: Arena) -> None:
    # test_run: 4096 - 256 headroom - 320 skb_shared_info = 3520 linear bytes, the rest in
    # page-sized fragments; data_out is the linear part followed by the fragments
    h, built = harness(arena, T.XDP, BIG)
    p = h.run.packet
    assert p is not None and p.length == 3520 and [f.size for f in p.frags] == [1480]
    assert h.call("xdp_get_buff_len", h.run.ctx_addr) == 5000
    assert built.data_out() == BIG
    pages = build_context(arena, T.XDP, bytes(3520 + 2 * 4096 + 7)).packet
    assert pages is not None and [f.size for f in pages.frags] == [4096, 4096, 7]


def test_xdp_load_and_store_bytes_across_fragments(arena: Arena) -> None:
    h, built = harness(arena, T.XDP, BIG)
    ctx, buf = h.run.ctx_addr, h.mem(bytes(64))
    assert h.call("xdp_load_bytes", ctx, 3500, buf, 40) == 0
    assert h.read(buf, 40) == BIG[3500:3540]
    assert h.call("xdp_load_bytes", ctx, 4990, buf, 10) == 0
    assert h.read(buf, 10) == BIG[4990:]
    new = h.mem(bytes(range(30)))
    assert h.call("xdp_store_bytes", ctx, 3510, new, 30) == 0
    assert built.data_out() == BIG[:3510] + bytes(range(30)) + BIG[3540:]
    assert h.call("xdp_load_bytes", ctx, 4991, buf, 10) == -errno.EINVAL  # past the end
    assert h.call("xdp_store_bytes", ctx, 0x10000, buf, 1) == -errno.EFAULT
    small, _ = harness(arena, T.XDP, PKT)
    assert small.call("xdp_load_bytes", small.run.ctx_addr, 2, buf, 4) == 0
    assert small.read(buf, 4) == PKT[2:6]


def test_xdp_adjust_tail_with_fragments(arena: Arena) -> None:
    h, built = harness(arena, T.XDP, BIG)
    ctx = h.run.ctx_addr
    assert h.call("xdp_adjust_tail", ctx, 4096 - 1480 + 1) == -errno.EINVAL  # past the page
    assert h.call("xdp_adjust_tail", ctx, 20) == 0  # the last fragment grows, zero-filled
    assert built.data_out() == BIG + bytes(20)
    assert h.call("xdp_adjust_tail", ctx, -(5020 - 13)) == -errno.EINVAL  # below 14 bytes
    assert h.call("xdp_adjust_tail", ctx, -1510) == 0  # frees the fragment, 10 linear bytes
    p = h.run.packet
    assert p is not None and not p.frags and p.length == 3510
    assert built.data_out() == BIG[:3510]
    assert h.call("xdp_get_buff_len", ctx) == 3510


def test_xdp_adjust_meta_limits(arena: Arena) -> None:
    pkt = bytes(range(60))
    h, built = harness(arena, T.XDP, pkt)
    ctx = h.run.ctx_addr
    assert h.call("xdp_adjust_meta", ctx, 4) == -errno.EINVAL  # meta past data
    assert h.call("xdp_adjust_meta", ctx, -2) == -errno.EACCES  # not 4-aligned
    assert h.call("xdp_adjust_meta", ctx, -36) == -errno.EACCES  # more than 32 bytes
    assert h.call("xdp_adjust_meta", ctx, -8) == 0
    data, _, meta = xdp_fields(h)
    assert data - meta == 8
    arena.write(meta, b"METADATA")
    assert built.data_out() == b"METADATA" + pkt
    assert h.call("xdp_adjust_head", ctx, 10) == 0  # the metadata moves with data
    data, _, meta = xdp_fields(h)
    assert h.read(meta, 8) == b"METADATA" and data - meta == 8
    assert h.call("xdp_adjust_head", ctx, -(10 + 216)) == -errno.EINVAL  # meta needs room too
    assert h.call("xdp_adjust_head", ctx, -(10 + 216) + 8) == 0


# -- redirects --------------------------------------------------------------------------------


def test_redirect_xdp_and_tc(arena: Arena) -> None:
    x = Harness(arena, T.XDP)
    assert x.call("redirect", 3, 1) == 0  # XDP_ABORTED: XDP takes no flags
    assert x.call("redirect", 3, 0) == 4 and x.run.redirect == RedirectRecord("redirect", 3, 0)
    t = Harness(arena, T.SCHED_CLS)
    assert t.call("redirect", 5, 1) == 7  # TC_ACT_REDIRECT, BPF_F_INGRESS
    assert t.run.redirect == RedirectRecord("redirect", 5, 1)
    assert t.call("redirect", 5, 2) == 2  # TC_ACT_SHOT


class FakeDevmap:
    map_type = BpfMapType.DEVMAP
    key_size = 4
    value_size = 4
    max_entries = 4

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        return 0x5000 if key == (1).to_bytes(4, "little") else 0


def test_redirect_map(arena: Arena) -> None:
    h = Harness(arena, T.XDP)
    dev = FakeDevmap()
    mp = h.run.maps.register(dev)
    assert h.call("redirect_map", mp, 1, 0) == 4
    assert h.run.redirect == RedirectRecord("redirect_map", 1, 0, dev)
    assert h.call("redirect_map", mp, 2, 2) == 2  # missing: the low flag bits are returned
    assert h.run.redirect is None
    assert h.call("redirect_map", mp, 2, 1 << 3) == 4  # BPF_F_BROADCAST
    assert h.call("redirect_map", mp, 1, 1 << 5) == 0  # unknown flag: XDP_ABORTED
