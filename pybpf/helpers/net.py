"""Packet helpers: skb byte access, checksum fix-ups, XDP head/tail/meta moves, redirects.

Place in the pipeline: declarations collected into ``DEFAULT_HELPERS`` by
:mod:`pybpf.helpers.table`; implementations work on ``RunContext.packet`` (laid out by
:mod:`pybpf.helpers.progtypes` the way BPF_PROG_TEST_RUN lays it out). Semantics, errno values
and limits are net/core/filter.c's: offsets are relative to ``skb->data`` / ``xdp->data``,
checksum helpers take ``BPF_F_*`` flags as the kernel does, XDP keeps ``sizeof(struct
xdp_frame)`` (40 bytes) at the head of the frame and the skb_shared_info room at its tail.
"""

from __future__ import annotations

import errno
import struct

from pybpf.errors import UnsupportedError
from pybpf.helpers import csum
from pybpf.helpers.context import PacketState, RedirectRecord, RunContext, map_type_of
from pybpf.helpers.decl import (
    ARG_ANYTHING,
    ARG_CONST_MAP_PTR,
    ARG_CONST_SIZE,
    ARG_CONST_SIZE_OR_ZERO,
    ARG_PTR_TO_CTX,
    ARG_PTR_TO_MEM,
    ARG_PTR_TO_MEM_OR_NULL,
    ARG_PTR_TO_UNINIT_MEM,
    MEM_RDONLY,
    HelperDecl,
    HelperFlag,
    RetKind,
)
from pybpf.helpers.groups import CSUM_DIFF, CSUM_REPLACE, REDIRECT, SKB_LOAD, SKB_STORE, XDP_ONLY
from pybpf.uapi import ENOTSUPP, ETH_HLEN, XDP_METADATA_MAX, BpfMapType, BpfProgType

INT_MAX = (1 << 31) - 1
U16_MAX = 0xFFFF

BPF_F_RECOMPUTE_CSUM = 1 << 0
BPF_F_INVALIDATE_HASH = 1 << 1
BPF_F_HDR_FIELD_MASK = 0xF
BPF_F_PSEUDO_HDR = 1 << 4
BPF_F_MARK_MANGLED_0 = 1 << 5
BPF_F_MARK_ENFORCE = 1 << 6
BPF_F_IPV6 = 1 << 7
BPF_F_INGRESS = 1 << 0
BPF_F_BROADCAST = 1 << 3
BPF_F_EXCLUDE_INGRESS = 1 << 4
CSUM_MANGLED_0 = 0xFFFF

XDP_ABORTED, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT = 0, 1, 2, 3, 4
TC_ACT_SHOT, TC_ACT_REDIRECT = 2, 7

_M32 = 0xFFFFFFFF
CHANGES = HelperFlag.CHANGES_PKT_DATA


def _packet(run: RunContext, helper: str) -> PacketState:
    if run.packet is None:
        raise UnsupportedError(helper, "this run has no packet")
    return run.packet


# -- skb bytes --------------------------------------------------------------------------------


def _skb_load_bytes(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_skb_load_bytes")
    offset, size = r2 & _M32, r4 & _M32
    if offset > INT_MAX or offset + size > p.length:
        run.write(r3, bytes(size))
        return -errno.EFAULT
    run.write(r3, run.read(p.data + offset, size))
    return 0


def _skb_store_bytes(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_skb_store_bytes")
    offset, size = r2 & _M32, r4 & _M32
    if r5 & ~(BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH):
        return -errno.EINVAL
    if offset > INT_MAX or offset + size > p.length:
        return -errno.EFAULT
    run.write(p.data + offset, run.read(r3, size))
    return 0


# -- checksums --------------------------------------------------------------------------------


def _csum_field(run: RunContext, offset: int, helper: str) -> tuple[int, int] | int:
    """(address, current __sum16) of the checksum at ``offset``, or a negative errno."""
    p = _packet(run, helper)
    if offset > 0xFFFF or offset & 1 or offset + 2 > p.length:
        return -errno.EFAULT
    addr = p.data + offset
    return addr, int.from_bytes(run.read(addr, 2), "little")


def _l3_csum_replace(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    if r5 & ~BPF_F_HDR_FIELD_MASK:
        return -errno.EINVAL
    field = _csum_field(run, r2 & _M32, "bpf_l3_csum_replace")
    if isinstance(field, int):
        return field
    addr, cur = field
    size = r5 & BPF_F_HDR_FIELD_MASK
    if size == 0:
        if r3:
            return -errno.EINVAL
        new = csum.csum_replace_by_diff(cur, r4 & _M32)
    elif size == 2:
        new = csum.csum_replace2(cur, r3 & 0xFFFF, r4 & 0xFFFF)
    elif size == 4:
        new = csum.csum_replace4(cur, r3 & _M32, r4 & _M32)
    else:
        return -errno.EINVAL
    run.write(addr, new.to_bytes(2, "little"))
    return 0


def _l4_csum_replace(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    allowed = (
        BPF_F_MARK_MANGLED_0
        | BPF_F_MARK_ENFORCE
        | BPF_F_PSEUDO_HDR
        | BPF_F_HDR_FIELD_MASK
        | BPF_F_IPV6
    )
    if r5 & ~allowed:
        return -errno.EINVAL
    field = _csum_field(run, r2 & _M32, "bpf_l4_csum_replace")
    if isinstance(field, int):
        return field
    addr, cur = field
    mangled_zero = bool(r5 & BPF_F_MARK_MANGLED_0)
    if mangled_zero and not r5 & BPF_F_MARK_ENFORCE and cur == 0:
        return 0
    size = r5 & BPF_F_HDR_FIELD_MASK
    # skb->ip_summed is CHECKSUM_NONE in a test run, so the pseudo-header flag changes
    # nothing but skb->csum, which a program cannot see.
    if size == 0:
        if r3:
            return -errno.EINVAL
        new = csum.csum_replace_by_diff(cur, r4 & _M32)
    elif size in (2, 4):
        # inet_proto_csum_replace2 widens the __be16 values and goes through the 4-byte path.
        mask = 0xFFFF if size == 2 else _M32
        diff = struct.pack("<II", ~(r3 & mask) & _M32, r4 & mask)
        new = csum.csum_fold(csum.csum_partial(diff, ~csum.csum_unfold(cur) & _M32))
    else:
        return -errno.EINVAL
    if mangled_zero and new == 0:
        new = CSUM_MANGLED_0
    run.write(addr, new.to_bytes(2, "little"))
    return 0


def _csum_diff(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    # Linux 6.12 (commit "bpf: bpf_csum_diff: optimize and homogenize for all archs") dropped
    # the scratch buffer with its size limits and folds every result, the bare seed too, to
    # 16 bits, so the value no longer depends on the architecture's csum_partial.
    from_size, to_size = r2 & _M32, r4 & _M32
    ret = r5 & _M32
    if from_size and to_size:
        ret = csum.csum_sub(
            csum.csum_partial(run.read(r3, to_size), ret),
            csum.csum_partial(run.read(r1, from_size), 0),
        )
    elif to_size:
        ret = csum.csum_partial(run.read(r3, to_size), ret)
    elif from_size:
        ret = ~csum.csum_partial(run.read(r1, from_size), ~ret & _M32) & _M32
    return csum.csum_from32to16(ret)


# -- XDP --------------------------------------------------------------------------------------


def _metalen(p: PacketState) -> int:
    return 0 if not p.meta_supported or p.data_meta > p.data else p.data - p.data_meta


def _s32(v: int) -> int:
    v &= _M32
    return v - (1 << 32) if v >> 31 else v


def _xdp_adjust_head(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_xdp_adjust_head")
    offset = _s32(r2)
    metalen = _metalen(p)
    data = p.data + offset
    if data < p.hard_start + p.frame_reserved + metalen or data > p.data_end - ETH_HLEN:
        return -errno.EINVAL
    if metalen:
        run.write(p.data_meta + offset, run.read(p.data_meta, metalen))
    p.data_meta += offset
    p.data = data
    run.sync_packet_fields()
    return 0


def _xdp_adjust_tail(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_xdp_adjust_tail")
    offset = _s32(r2)
    if p.frags:
        return (
            _xdp_frags_shrink_tail(run, p, -offset)
            if offset < 0
            else _xdp_frags_grow(run, p, offset)
        )
    data_end = p.data_end + offset
    if data_end > p.hard_end or data_end < p.data + ETH_HLEN:
        return -errno.EINVAL
    if offset > 0:
        run.write(p.data_end, bytes(offset))
    p.data_end = data_end
    run.sync_packet_fields()
    return 0


def _xdp_frags_grow(run: RunContext, p: PacketState, offset: int) -> int:
    """bpf_xdp_frags_increase_tail: the last fragment grows into its page (zero-filled)."""
    last = p.frags[-1]
    if offset > p.frag_room - last.size:
        return -errno.EINVAL
    run.write(last.start + last.size, bytes(offset))
    last.size += offset
    return 0


def _xdp_frags_shrink_tail(run: RunContext, p: PacketState, offset: int) -> int:
    """bpf_xdp_frags_shrink_tail: fragments shrink from the last one, emptied ones are
    released; what is left once none remains comes off the linear part."""
    if offset > p.length + p.frags_size - ETH_HLEN:
        return -errno.EINVAL
    while p.frags and offset > 0:
        last = p.frags[-1]
        shrink = min(offset, last.size)
        last.size -= shrink
        offset -= shrink
        if not last.size:
            p.frags.pop()
    if not p.frags:
        p.data_end -= offset
        run.sync_packet_fields()
    return 0


def _xdp_pieces(p: PacketState) -> list[tuple[int, int]]:
    """The packet as (address, length) pieces: the linear part from data, then the frags."""
    return [(p.data, p.length), *((f.start, f.size) for f in p.frags)]


def _xdp_copy(run: RunContext, r2: int, r3: int, r4: int, store: bool) -> int:
    """bpf_xdp_load_bytes / bpf_xdp_store_bytes: ``len`` bytes at ``offset`` of the whole
    packet (linear part and fragments), to or from the buffer at ``r3``."""
    p = _packet(run, "bpf_xdp_store_bytes" if store else "bpf_xdp_load_bytes")
    offset, size = r2 & _M32, r4 & _M32
    if offset > U16_MAX or size > U16_MAX:
        return -errno.EFAULT
    if offset + size > p.length + p.frags_size:
        return -errno.EINVAL
    done = 0
    for addr, length in _xdp_pieces(p):
        if offset >= length:
            offset -= length
            continue
        n = min(length - offset, size - done)
        if store:
            run.write(addr + offset, run.read(r3 + done, n))
        else:
            run.write(r3 + done, run.read(addr + offset, n))
        done += n
        offset = 0
        if done == size:
            break
    return 0


def _xdp_load_bytes(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _xdp_copy(run, r2, r3, r4, store=False)


def _xdp_store_bytes(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    return _xdp_copy(run, r2, r3, r4, store=True)


def _xdp_get_buff_len(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_xdp_get_buff_len")
    return p.length + p.frags_size


def _xdp_adjust_meta(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    p = _packet(run, "bpf_xdp_adjust_meta")
    meta = p.data_meta + _s32(r2)
    metalen = p.data - meta
    if not p.meta_supported or p.data_meta > p.data:
        return -ENOTSUPP
    if meta < p.hard_start + p.frame_reserved or meta > p.data:
        return -errno.EINVAL
    if metalen & 3 or metalen > XDP_METADATA_MAX:
        return -errno.EACCES
    p.data_meta = meta
    run.sync_packet_fields()
    return 0


# -- redirects --------------------------------------------------------------------------------


def _redirect(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    ifindex = r1 & _M32
    if run.prog_type is BpfProgType.XDP:
        if r2:
            return XDP_ABORTED
        run.redirect = RedirectRecord("redirect", ifindex, r2)
        return XDP_REDIRECT
    if r2 & ~BPF_F_INGRESS:
        return TC_ACT_SHOT
    run.redirect = RedirectRecord("redirect", ifindex, r2)
    return TC_ACT_REDIRECT


def _redirect_map(run: RunContext, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    m = run.maps[r1]
    action_mask = XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX
    devmap = map_type_of(m) in (BpfMapType.DEVMAP, BpfMapType.DEVMAP_HASH)
    flag_mask = BPF_F_BROADCAST | BPF_F_EXCLUDE_INGRESS if devmap else 0
    if r3 & ~(action_mask | flag_mask):
        return XDP_ABORTED
    key = (r2 & ((1 << (8 * m.key_size)) - 1)).to_bytes(m.key_size, "little")
    if not m.lookup_elem(key, run.cpu) and not r3 & BPF_F_BROADCAST:
        run.redirect = None
        return r3 & action_mask
    run.redirect = RedirectRecord("redirect_map", r2 & _M32, r3, m)
    return XDP_REDIRECT


NET_HELPERS: tuple[HelperDecl, ...] = (
    HelperDecl(
        9,
        "skb_store_bytes",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE, ARG_ANYTHING),
        _skb_store_bytes,
        CHANGES,
        SKB_STORE,
    ),
    HelperDecl(
        10,
        "l3_csum_replace",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_ANYTHING, ARG_ANYTHING, ARG_ANYTHING),
        _l3_csum_replace,
        CHANGES,
        CSUM_REPLACE,
    ),
    HelperDecl(
        11,
        "l4_csum_replace",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_ANYTHING, ARG_ANYTHING, ARG_ANYTHING),
        _l4_csum_replace,
        CHANGES,
        CSUM_REPLACE,
    ),
    HelperDecl(
        23,
        "redirect",
        RetKind.INTEGER,
        (ARG_ANYTHING, ARG_ANYTHING),
        _redirect,
        prog_types=REDIRECT,
    ),
    HelperDecl(
        26,
        "skb_load_bytes",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE),
        _skb_load_bytes,
        prog_types=SKB_LOAD,
    ),
    HelperDecl(
        28,
        "csum_diff",
        RetKind.INTEGER,
        (
            ARG_PTR_TO_MEM_OR_NULL | MEM_RDONLY,
            ARG_CONST_SIZE_OR_ZERO,
            ARG_PTR_TO_MEM_OR_NULL | MEM_RDONLY,
            ARG_CONST_SIZE_OR_ZERO,
            ARG_ANYTHING,
        ),
        _csum_diff,
        HelperFlag.PKT_ACCESS,
        CSUM_DIFF,
    ),
    HelperDecl(
        44,
        "xdp_adjust_head",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING),
        _xdp_adjust_head,
        CHANGES,
        XDP_ONLY,
    ),
    HelperDecl(
        51,
        "redirect_map",
        RetKind.INTEGER,
        (ARG_CONST_MAP_PTR, ARG_ANYTHING, ARG_ANYTHING),
        _redirect_map,
        prog_types=XDP_ONLY,
    ),
    HelperDecl(
        54,
        "xdp_adjust_meta",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING),
        _xdp_adjust_meta,
        CHANGES,
        XDP_ONLY,
    ),
    HelperDecl(
        65,
        "xdp_adjust_tail",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING),
        _xdp_adjust_tail,
        CHANGES,
        XDP_ONLY,
    ),
    HelperDecl(
        188,
        "xdp_get_buff_len",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX,),
        _xdp_get_buff_len,
        prog_types=XDP_ONLY,
    ),
    HelperDecl(
        189,
        "xdp_load_bytes",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_PTR_TO_UNINIT_MEM, ARG_CONST_SIZE),
        _xdp_load_bytes,
        prog_types=XDP_ONLY,
    ),
    HelperDecl(
        190,
        "xdp_store_bytes",
        RetKind.INTEGER,
        (ARG_PTR_TO_CTX, ARG_ANYTHING, ARG_PTR_TO_MEM | MEM_RDONLY, ARG_CONST_SIZE),
        _xdp_store_bytes,
        prog_types=XDP_ONLY,
    ),
)
