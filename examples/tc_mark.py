"""Run examples/tc_mark.o: __sk_buff fields in (len, protocol, pkt_type, data) and out (mark,
priority, cb) through the ctx the test run copies back."""

from __future__ import annotations

import struct
from pathlib import Path

import pybpf

TC_ACT_OK, TC_ACT_SHOT = 0, 2
MARK, PRIORITY, CB = 8, 32, 48  # offsets in struct __sk_buff


def frame(dst: bytes, ethertype: int, tos: int) -> bytes:
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 28, 0, 0, 64, 17, 0, bytes(4), bytes(4))
    return dst + bytes.fromhex("020000000001") + struct.pack("!H", ethertype) + ip + bytes(8)


def main() -> None:
    obj = pybpf.load_object(Path(__file__).with_name("tc_mark.o"))
    prog = obj.programs["tc_mark"]
    assert prog.type == "sched_cls"

    pkt = frame(bytes.fromhex("020000000002"), 0x0800, tos=0x10)
    res = prog.run(data=pkt, ctx={"mark": 0})
    mark, priority = (
        struct.unpack_from("<I", res.ctx, MARK)[0],
        struct.unpack_from("<I", res.ctx, PRIORITY)[0],
    )
    cb = struct.unpack_from("<5I", res.ctx, CB)
    print("ipv4      ->", res.retval, "mark", mark, "priority", priority, "cb", cb)
    assert res.retval == TC_ACT_OK
    assert mark == len(pkt) and priority == 0x10
    assert cb == (0x0008, 0, 0, 0, 0)  # htons(ETH_P_IP) as a little-endian u32 load sees it

    res = prog.run(data=frame(b"\xff" * 6, 0x0800, tos=0), ctx={"cb": bytes(20)})
    cb = struct.unpack_from("<5I", res.ctx, CB)
    print("all-ones  ->", res.retval, "cb", cb)  # multicast on lo: it has no broadcast address
    assert res.retval == TC_ACT_OK and cb[1] == 1

    res = prog.run(data=frame(bytes.fromhex("020000000002"), 0x86DD, tos=0) + bytes(40))
    print("ipv6      ->", res.retval)
    assert res.retval == TC_ACT_SHOT and res.ctx is None


if __name__ == "__main__":
    main()
