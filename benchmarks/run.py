"""The interpreter's performance suite (what `make bench` runs; not a timed test).

Each benchmark is one C source (`benchmarks/<name>.c`, entry `bench_<name>(n)`) built twice
from the same text: with ``clang-19 -target bpf -O2`` into `<name>.o`, whose ``.text`` is
extracted into `<name>.bin` (both committed, so the suite runs without clang; rebuilt with
``--rebuild``), and natively with ``-O2`` into a harness (`native.c`, built at bench time).
Both get the same ``n``, their results must agree, and the table shows the interpreter's
BPF instructions per second and its slowdown against native code. A benchmark over memory
gets a buffer too: ``bench_<name>(buf, len, n)``, the buffer an Arena region outside the
stack for the interpreter (what a packet or a map value is), so its loads and stores take
the checked path.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pybpf.isa import decode_program
from pybpf.vm import Interpreter

HERE = Path(__file__).resolve().parent
# name -> (iterations for the interpreter, buffer bytes (0: none), what it exercises)
BENCHMARKS = {
    "arith": (300_000, 0, "tight arithmetic loop"),
    "stack": (200_000, 0, "stack memory traffic"),
    "calls": (100_000, 0, "bpf-to-bpf calls"),
    "packet": (400, 1500, "packet memory traffic"),
}


def build_bpf(name: str) -> None:
    src, obj, raw = HERE / f"{name}.c", HERE / f"{name}.o", HERE / f"{name}.bin"
    subprocess.run(
        ["clang-19", "-target", "bpf", "-O2", "-c", str(src), "-o", str(obj)], check=True
    )
    subprocess.run(
        ["llvm-objcopy-19", "-O", "binary", "--only-section=.text", str(obj), str(raw)], check=True
    )


def build_native(tmp: Path) -> Path | None:
    exe = tmp / "native"
    for cc in ("clang-19", "clang", "gcc", "cc"):
        if shutil.which(cc):
            cmd = [cc, "-O2", "-I", str(HERE), str(HERE / "native.c"), "-o", str(exe)]
            subprocess.run(cmd, check=True)
            return exe
    return None


def run_native(exe: Path, name: str, n: int, size: int) -> tuple[int, float]:
    cmd = [str(exe), name, str(n), "20", *([str(size)] if size else [])]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    result, ns = out.stdout.split()
    return int(result), float(ns)


def run_interp(name: str, n: int, size: int, repeat: int) -> tuple[int, int, float]:
    prog = Interpreter(decode_program((HERE / f"{name}.bin").read_bytes()), name=name)
    buf = prog.arena.alloc(size, kind="packet", name=name) if size else None
    args = (buf.start, size) if buf is not None else ()
    try:
        prog.execute(*args, 2 if buf is not None else 1000, budget=None)
        best = float("inf")
        result = insns = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            out = prog.execute(*args, n, budget=None)
            best = min(best, time.perf_counter() - t0)
            result, insns = out.r0, out.insns
    finally:
        if buf is not None:
            prog.arena.free(buf)
        prog.close()
    return result, insns, best


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="rebuild the .o/.bin with clang")
    parser.add_argument("--repeat", type=int, default=3, help="runs per benchmark (best kept)")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the iterations")
    args = parser.parse_args()
    if args.rebuild:
        for name in BENCHMARKS:
            build_bpf(name)
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_native(Path(tmp))
        print(
            f"{'benchmark':<32}{'insns':>12}{'interp insns/s':>16}{'interp ms':>11}"
            f"{'native ns':>12}{'ratio':>9}"
        )
        ok = True
        for name, (iters, size, what) in BENCHMARKS.items():
            n = int(iters * args.scale)
            result, insns, secs = run_interp(name, n, size, args.repeat)
            native = run_native(exe, name, n, size) if exe else None
            ratio = f"{secs * 1e9 / native[1]:.0f}x" if native else "-"
            native_ns = f"{native[1]:.0f}" if native else "-"
            if native and native[0] != result:
                print(f"{name}: interpreter result {result:#x} != native {native[0]:#x}")
                ok = False
            print(
                f"{name + ' (' + what + ')':<32}{insns:>12}{insns / secs / 1e6:>14.1f} M"
                f"{secs * 1e3:>11.1f}{native_ns:>12}{ratio:>9}"
            )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
