"""Run examples/xdp_count.o on a few packets; check verdicts, rewritten bytes and counters.

Also the README's command-line example:
    pybpf run examples/xdp_count.o --prog xdp_count --data-hex <the UDP echo packet below>
"""

from __future__ import annotations

import struct
from pathlib import Path

import pybpf

XDP_DROP, XDP_PASS, XDP_TX = 1, 2, 3
IPPROTO_TCP, IPPROTO_UDP = 6, 17
DST_MAC, SRC_MAC = bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
SRC_IP, DST_IP = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])


def checksum(header: bytes) -> int:
    """RFC 1071 one's-complement sum of 16-bit words, complemented."""
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(proto: int, ttl: int, payload: bytes) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), 1, 0, ttl, proto, 0, SRC_IP, DST_IP
    )
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return DST_MAC + SRC_MAC + b"\x08\x00" + header + payload


def udp(sport: int, dport: int, body: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def main() -> None:
    obj = pybpf.load_object(Path(__file__).with_name("xdp_count.o"))
    prog = obj.programs["xdp_count"]
    counts = obj.maps["proto_counts"]

    echo = ipv4(IPPROTO_UDP, 64, udp(40000, 7, b"ping"))
    print("udp echo packet:", echo.hex())
    res = prog.run(data=echo)
    print("udp echo  ->", res.retval, res.data.hex())
    assert res.retval == XDP_TX
    out = res.data
    assert out[0:6] == SRC_MAC and out[6:12] == DST_MAC  # MACs swapped
    assert out[14 + 8] == 63  # TTL decremented
    assert checksum(out[14:34]) == 0  # header checksum still valid
    assert out[26:30] == DST_IP and out[30:34] == SRC_IP  # addresses swapped
    assert struct.unpack("!HH", out[34:38]) == (7, 40000)  # ports swapped

    dns = ipv4(IPPROTO_UDP, 9, udp(40000, 53, b"query"))
    res = prog.run(data=dns)
    print("udp dns   ->", res.retval)
    assert res.retval == XDP_PASS and res.data[14 + 8] == 8 and checksum(res.data[14:34]) == 0
    assert res.data[34:] == dns[34:]  # not bounced

    tcp = ipv4(IPPROTO_TCP, 1, bytes(20))
    res = prog.run(data=tcp)
    print("tcp ttl=1 ->", res.retval)
    assert res.retval == XDP_DROP and res.data == tcp

    arp = DST_MAC + SRC_MAC + b"\x08\x06" + bytes(28)
    res = prog.run(data=arp, repeat=3)
    print("arp x3    ->", res.retval)
    assert res.retval == XDP_PASS and res.data == arp

    seen = {key: value for key, value in counts.items() if value}
    print("proto_counts:", seen)
    assert seen == {0: 3, IPPROTO_TCP: 1, IPPROTO_UDP: 2}


if __name__ == "__main__":
    main()
