"""Run examples/queue_ringbuf.o: jobs pushed into a queue map from Python, results consumed
from the ring buffer after the run; the syscall ctx comes back with the count."""

from __future__ import annotations

import struct
from pathlib import Path

import pybpf


def main() -> None:
    obj = pybpf.load_object(Path(__file__).with_name("queue_ringbuf.o"))
    jobs, results = obj.maps["jobs"], obj.maps["results"]
    for job in (3, 4, 5, 12):
        jobs.push(job)
    print("queued:", list(jobs))

    res = obj.programs["drain"].run(ctx=struct.pack("<II", 3, 0))
    done = struct.unpack("<II", res.ctx)[1]
    records = [struct.unpack("<IIQ", r) for r in results.consume()]
    print("drained", res.retval, "ctx.done", done, "records", [(j, sq) for j, _, sq in records])
    assert res.retval == 3 and done == 3
    assert [(j, sq) for j, _, sq in records] == [(3, 9), (4, 16), (5, 25)]
    assert jobs.peek() == 12 and len(jobs) == 1

    res = obj.programs["drain"].run(ctx=struct.pack("<II", 10, 0))
    records = [struct.unpack("<IIQ", r) for r in results.consume()]
    print("drained", res.retval, "records", [(j, sq) for j, _, sq in records])
    assert res.retval == 1 and [(j, sq) for j, _, sq in records] == [(12, 144)]
    try:
        jobs.pop()
    except pybpf.MapError as e:
        print("queue empty:", e)
        assert e.errno == 2  # ENOENT
    else:
        raise AssertionError("the queue should be empty")


if __name__ == "__main__":
    main()
