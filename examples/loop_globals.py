"""Run examples/loop_globals.o: bpf_loop filling a .bss array, a .data counter, a .rodata
limit, bpf_printk output."""

from __future__ import annotations

import struct
from pathlib import Path

import pybpf


def main() -> None:
    obj = pybpf.load_object(Path(__file__).with_name("loop_globals.o"))
    bss = next(m for name, m in obj.maps.items() if name.endswith(".bss"))
    data = next(m for name, m in obj.maps.items() if name.endswith(".data"))
    rodata = next(m for name, m in obj.maps.items() if name.endswith(".rodata"))
    print("limit", rodata[0], "runs", data[0])
    assert rodata[0]["limit"] == 32 and data[0] == {"runs": 100}

    res = obj.programs["fib"].run(ctx=struct.pack("<I", 10))
    print("fib(10) ->", res.retval, res.output)
    assert res.retval == 34
    assert bss[0]["table"][:10] == [0, 1, 1, 2, 3, 5, 8, 13, 21, 34]
    assert res.output == ["fib: 10 numbers, run 101"]

    res = obj.programs["fib"].run(ctx=struct.pack("<I", 100))  # capped at 32 by .rodata
    print("fib(100) ->", res.retval, res.output)
    assert res.retval == 1346269 and data[0] == {"runs": 102}
    try:
        rodata[0] = bytes(4)
    except pybpf.MapError as e:
        print(".rodata is frozen:", e)
    else:
        raise AssertionError(".rodata should be frozen")


if __name__ == "__main__":
    main()
