"""The `pybpf` command: the top of the pipeline, a thin shell over the library.

One small function per subcommand, registered in ``_COMMANDS``; shared helpers read inputs
(files, hex strings, stdin) and print JSON. Errors are printed, never raised: every
`BpfError` becomes ``pybpf: error: <message>`` on stderr and the process exits with the
error's ``exit_code``; an unreadable input file exits 2. Exit codes: 0 ok, 1 rejected /
failed / trapped, 2 usage or input error (argparse's own errors too), 3 unsupported feature.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any, TextIO

from pybpf.asm import DIALECTS, assemble, disassemble, format_insn
from pybpf.btf import dump_c, dump_raw
from pybpf.conformance import ENGINES, check_engine, execute, hex_bytes, run_dir
from pybpf.errors import BpfError
from pybpf.helpers import DEFAULT_HELPERS
from pybpf.isa import Instruction, with_pcs
from pybpf.loader import ObjectSpec, ProgramSpec, load_spec
from pybpf.loader.summary import format_summary, summarize
from pybpf.maps import PerfEventArrayMap, RingBufMap
from pybpf.object import Object, Program, RunResult, load_object
from pybpf.vm import run_program

ELF_MAGIC = b"\x7fELF"
ASM_SUFFIXES = (".s", ".S", ".asm")


class InputError(BpfError):
    """A command-line input that is not what the command takes (a bad hex string, ...)."""

    exit_code = 2


# ---- shared helpers: reading inputs, printing results ----


def _read_bytes(path: str) -> bytes:
    return Path(path).read_bytes()


def _read_text(path: str) -> str:
    data = _read_bytes(path)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(f"{path}: not UTF-8 text (byte offset {e.start})") from e


def _parse_hex(text: str, what: str) -> bytes:
    decoded = hex_bytes(text)
    if isinstance(decoded, str):
        raise InputError(f"{what}: {decoded}")
    return decoded


def _load_program(path: str) -> bytes:
    """A raw program from ``path``: assembly text (by its suffix, either dialect) or
    instruction bytes."""
    if Path(path).suffix in ASM_SUFFIXES:
        return assemble(_read_text(path))
    return _read_bytes(path)


def _print_json(value: Any, out: TextIO) -> None:
    json.dump(value, out, indent=2)
    out.write("\n")


def _hex_or_none(value: int | None) -> str | None:
    return None if value is None else f"{value:#x}"


def _trace_printer(out: TextIO) -> Callable[[int, Instruction, Sequence[int]], None]:
    """A VM trace hook printing each executed instruction: pc, disassembly, registers."""

    def trace(pc: int, insn: Instruction, regs: Sequence[int]) -> None:
        text = format_insn(insn, "llvm", pc=pc)
        shown = " ".join(f"r{i}={value:#x}" for i, value in enumerate(regs) if value)
        out.write(f"{pc:5d}: {text:<40} {shown}\n")

    return trace


# ---- subcommands ----


def _cmd_conformance(args: argparse.Namespace) -> int:
    pattern = args.filter if args.filter.endswith(".data") else f"{args.filter}.data"
    results = run_dir(args.dir, args.engine, pattern)
    if not results:
        raise InputError(f"{args.dir}: no test file matches {pattern!r}")
    passed = sum(r.passed for r in results)
    failed = len(results) - passed
    if args.json:
        records = [
            {
                "name": r.name,
                "passed": r.passed,
                "expected": _hex_or_none(r.expected),
                "got": _hex_or_none(r.got),
                "error": r.error,
            }
            for r in results
        ]
        _print_json({"passed": passed, "failed": failed, "results": records}, sys.stdout)
    else:
        for r in results:
            if not r.passed:
                print(f"FAIL {r.name}: {r.reason}")
        print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


def _cmd_conformance_plugin(args: argparse.Namespace) -> int:
    mem = _parse_hex(" ".join(args.memory), "memory")
    stdin = sys.stdin.buffer.read()
    try:
        text = stdin.decode("ascii")
    except UnicodeDecodeError as e:
        raise InputError(f"program on stdin: not hex text (byte offset {e.start})") from e
    code = _parse_hex(text, "program on stdin")
    try:
        outcome = execute(code, mem, args.engine)
    except BpfError as e:
        # The bpf_conformance runner compares stdout with a test's expected error text.
        print(e)
        raise
    print(f"{outcome.r0:x}")
    return 0


def _cmd_asm(args: argparse.Namespace) -> int:
    code = assemble(_read_text(args.file), dialect=args.dialect)
    out = args.output or str(Path(args.file).with_suffix(".bin"))
    Path(out).write_bytes(code)
    return 0


def _select_programs(spec: ObjectSpec, name: str | None) -> list[ProgramSpec]:
    if name is None:
        return list(spec.programs.values())
    if name not in spec.programs:
        known = ", ".join(spec.programs) or "none"
        raise InputError(f"{spec.name}: no program named {name!r} (programs: {known})")
    return [spec.programs[name]]


def _disasm_program(prog: ProgramSpec, dialect: str) -> str:
    """One program of an object, llvm-objdump -S style: a header, then each instruction with
    the C source line it came from whenever that line changes; helper calls name the helper
    and relocated instructions the map, kfunc or extern they refer to."""
    marker = "#" if dialect == "conformance" else ";"
    helper_names = {d.id: f"bpf_{d.name}" for d in DEFAULT_HELPERS.by_id.values()}
    targets = {r.pc: f"{r.kind.value} {r.target}" for r in prog.relocations}
    lines = [f"{prog.name} (section {prog.section}, {prog.type}):"]
    starts = {sub.start: sub.name for sub in prog.subprograms}
    last_source = None
    for pc, insn in with_pcs(prog.insns):
        if pc in starts:
            lines.append(f"{starts[pc]}:")
        record = prog.line_at(pc)
        where = None if record is None else (record.file, record.line)
        if record is not None and record.source and where != last_source:
            lines.append(f"{marker} {record.file}:{record.line}: {record.source.strip()}")
            last_source = where
        text = format_insn(insn, dialect, pc=pc, helper_names=helper_names)
        if pc in targets:
            text += f" {marker} {targets[pc]}"
        lines.append(f"    {text}")
    return "\n".join(lines) + "\n"


def _cmd_disasm(args: argparse.Namespace) -> int:
    code = _read_bytes(args.file)
    if code.startswith(ELF_MAGIC):
        spec = load_spec(args.file)
        texts = [_disasm_program(p, args.dialect) for p in _select_programs(spec, args.prog)]
        sys.stdout.write("\n".join(texts))
        return 0
    sys.stdout.write(disassemble(code, dialect=args.dialect))
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    spec = load_spec(args.file, target_btf=args.target_btf)
    summary = summarize(spec)
    if args.json:
        _print_json(summary, sys.stdout)
    else:
        sys.stdout.write(format_summary(summary))
    return 0


def _cmd_btf(args: argparse.Namespace) -> int:
    spec = load_spec(args.file)
    if spec.btf is None:
        raise InputError(f"{args.file}: the object has no .BTF section")
    sys.stdout.write(dump_raw(spec.btf) if args.raw else dump_c(spec.btf))
    return 0


# The value ranges of --ksym (an address) and --kconfig (a signed or unsigned option value,
# stored in the extern's own width).
_ASSIGNMENT_RANGES = {"--ksym": (0, 1 << 64), "--kconfig": (-(1 << 63), 1 << 64)}


def _parse_assignments(items: Sequence[str] | None, flag: str) -> dict[str, int]:
    """``NAME=VALUE`` options (decimal or 0x-hex values) as a mapping; a later one wins."""
    low, high = _ASSIGNMENT_RANGES[flag]
    values: dict[str, int] = {}
    for item in items or ():
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise InputError(f"{flag} {item!r}: expected NAME=VALUE")
        try:
            value = int(text.strip(), 0)
        except ValueError as e:
            raise InputError(f"{flag} {item!r}: {text!r} is not a decimal or 0x-hex integer") from e
        if not low <= value < high:
            raise InputError(f"{flag} {item!r}: {value} is out of range [{low}, {high - 1}]")
        values[name] = value
    return values


def _parse_ctx(text: str) -> Any:
    """``--ctx``: a JSON object of ctx field names (int values, or hex strings for byte
    fields such as ``cb``), a JSON list of u64 arguments, or a JSON string of raw hex bytes."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"--ctx: not JSON ({e.msg} at column {e.colno})") from e
    if isinstance(value, str):
        return _parse_hex(value, "--ctx")
    if isinstance(value, dict):
        return {
            k: _parse_hex(v, f"--ctx field {k}") if isinstance(v, str) else v
            for k, v in value.items()
        }
    if isinstance(value, list):
        return value
    raise InputError("--ctx: a JSON object of fields, a list of u64 arguments or a hex string")


def _map_changes(obj: Object, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The maps a run changed: per-key before/after for keyed maps, the value lists of queues
    and stacks, and the records ring buffers and perf-event arrays received."""
    changes: dict[str, Any] = {}
    for name, m in obj.maps.items():
        kind = m.map_type.short
        if isinstance(m, RingBufMap | PerfEventArrayMap):
            records = m.consume() if isinstance(m, RingBufMap) else m.read()
            if records:
                changes[name] = {"type": kind, "records": [r.hex() for r in records]}
            continue
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if isinstance(new, list):
            changes[name] = {"type": kind, "before": old, "after": new}
            continue
        keys = sorted(set(old or {}) | set(new or {}))
        changed = [
            {"key": k, "before": (old or {}).get(k), "after": (new or {}).get(k)}
            for k in keys
            if (old or {}).get(k) != (new or {}).get(k)
        ]
        changes[name] = {"type": kind, "changed": changed}
    return changes


def _run_record(prog: Program, res: RunResult, repeat: int, maps: dict[str, Any]) -> dict:
    redirect = res.redirect
    return {
        "program": prog.name,
        "type": prog.type,
        "retval": res.retval,
        "r0": f"{res.r0:#x}",
        "duration_ns": res.duration_ns,
        "repeat": repeat,
        "insns": res.insns,
        "data_out": None if res.data is None else res.data.hex(),
        "ctx_out": None if res.ctx is None else res.ctx.hex(),
        "output": res.output,
        "tail_calls": res.tail_calls,
        "final_program": res.program,
        "redirect": None
        if redirect is None
        else {
            "helper": redirect.helper,
            "ifindex": redirect.ifindex,
            "flags": redirect.flags,
            "map": getattr(redirect.map, "name", None),
        },
        "async_ran": [
            {"kind": e.kind, "time_ns": e.time_ns, "retval": e.retval} for e in res.async_ran
        ],
        "maps": maps,
    }


def _print_run(record: dict, out: TextIO) -> None:
    out.write(f"program {record['program']} ({record['type']})\n")
    out.write(f"retval: {record['retval']}\n")
    runs = "run" if record["repeat"] == 1 else "runs"
    out.write(f"duration: {record['duration_ns']} ns (average of {record['repeat']} {runs})\n")
    for key, label in (("data_out", "data out"), ("ctx_out", "ctx out")):
        if record[key] is not None:
            out.write(f"{label} ({len(record[key]) // 2} bytes): {record[key]}\n")
    if record["tail_calls"]:
        out.write(f"tail calls: {record['tail_calls']} (ended in {record['final_program']})\n")
    redirect = record["redirect"]
    if redirect is not None:
        target = f" map {redirect['map']}" if redirect["map"] else ""
        out.write(
            f"redirect: {redirect['helper']}{target} ifindex {redirect['ifindex']} "
            f"flags {redirect['flags']:#x}\n"
        )
    for e in record["async_ran"]:
        out.write(f"async: {e['kind']} callback at {e['time_ns']} ns returned {e['retval']}\n")
    if record["output"]:
        out.write("printk:\n" + "".join(f"  {line}\n" for line in record["output"]))
    if record["maps"]:
        out.write("maps changed:\n")
    for name, change in record["maps"].items():
        out.write(f"  {name} ({change['type']}):\n")
        if "records" in change:
            out.write("".join(f"    record {r}\n" for r in change["records"]))
        elif "changed" in change:
            for c in change["changed"]:
                old, new = (c[k] if c[k] is not None else "(none)" for k in ("before", "after"))
                out.write(f"    key {c['key']}: {old} -> {new}\n")
        else:
            out.write(f"    {change['before']} -> {change['after']}\n")


def _run_object(args: argparse.Namespace) -> int:
    if args.mem is not None or args.mem_hex is not None:
        raise InputError("--mem/--mem-hex are for raw programs; objects take --data/--ctx")
    ksyms = _parse_assignments(args.ksym, "--ksym")
    kconfig = _parse_assignments(args.kconfig, "--kconfig")
    obj = load_object(args.file, engine=args.engine, ksyms=ksyms, kconfig=kconfig)
    if args.prog is not None:
        prog = obj.programs[args.prog]
    elif len(obj.programs) == 1:
        prog = next(iter(obj.programs.values()))
    else:
        known = ", ".join(obj.programs) or "none"
        raise InputError(f"{args.file}: several programs, choose one with --prog ({known})")
    if args.data is not None:
        data = _read_bytes(args.data)
    elif args.data_hex is not None:
        data = _parse_hex(args.data_hex, "--data-hex")
    else:
        data = None
    options: dict[str, Any] = {"data": data, "repeat": args.repeat}
    if args.ctx is not None:
        options["ctx"] = _parse_ctx(args.ctx)
    if args.budget is not None:
        options["budget"] = args.budget
    if args.trace:
        options["trace"] = _trace_printer(sys.stderr)
    before = obj.map_state()
    res = prog.run(**options)
    record = _run_record(prog, res, args.repeat, _map_changes(obj, before, obj.map_state()))
    if args.json:
        _print_json(record, sys.stdout)
    else:
        _print_run(record, sys.stdout)
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    check_engine(args.engine)
    if Path(args.file).suffix not in ASM_SUFFIXES and _read_bytes(args.file).startswith(ELF_MAGIC):
        return _run_object(args)
    object_only = {
        "--prog": args.prog,
        "--data": args.data,
        "--data-hex": args.data_hex,
        "--ctx": args.ctx,
        "--ksym": args.ksym,
        "--kconfig": args.kconfig,
    }
    given = [flag for flag, value in object_only.items() if value is not None]
    if given or args.repeat != 1:
        raise InputError(f"{', '.join(given) or '--repeat'}: only for object files (.o)")
    code = _load_program(args.file)
    if args.mem is not None:
        mem = _read_bytes(args.mem)
    elif args.mem_hex is not None:
        mem = _parse_hex(args.mem_hex, "--mem-hex")
    else:
        mem = b""
    options: dict[str, Any] = {"mem": mem}
    if args.budget is not None:
        options["budget"] = args.budget
    if args.trace:
        options["trace"] = _trace_printer(sys.stderr)
    outcome = run_program(code, **options)
    if args.json:
        record = {
            "r0": f"{outcome.r0:#x}",
            "r0_int": outcome.r0,
            "insns": outcome.insns,
            "mem": outcome.mem.hex(),
        }
        _print_json(record, sys.stdout)
    else:
        print(f"r0 = {outcome.r0:#x}")
    return 0


# ---- the parser ----


def _positive_int(text: str) -> int:
    try:
        value = int(text, 0)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from e
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not positive")
    return value


def _setup_conformance(p: argparse.ArgumentParser) -> None:
    p.add_argument("dir", metavar="DIR", help="directory of bpf_conformance .data files")
    p.add_argument("--engine", choices=ENGINES, default="interp")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--filter", metavar="GLOB", default="*", help="run only tests named GLOB")


def _setup_conformance_plugin(p: argparse.ArgumentParser) -> None:
    p.add_argument("memory", nargs="*", metavar="MEM", help="input memory as hex bytes")
    p.add_argument("--engine", choices=ENGINES, default="interp")


def _setup_asm(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE.s")
    p.add_argument("-o", "--output", metavar="OUT", help="output file (default: FILE.bin)")
    p.add_argument("--dialect", choices=("auto", *DIALECTS), default="auto")


def _setup_disasm(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="FILE", help="an object file (.o) or raw instruction bytes")
    p.add_argument("--dialect", choices=DIALECTS, default="llvm")
    p.add_argument("--prog", metavar="NAME", help="only this program of an object file")


def _setup_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", metavar="OBJ.o")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--target-btf", metavar="FILE", help="resolve CO-RE against this BTF")


def _setup_btf(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=("dump",))
    p.add_argument("file", metavar="OBJ.o")
    p.add_argument("--raw", action="store_true", help="bpftool's raw format instead of C")


def _setup_run(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "file",
        metavar="FILE",
        help="an object file (.o), or a raw program: assembly (.s) or bytes (.bin)",
    )
    mem = p.add_mutually_exclusive_group()
    mem.add_argument("--mem-hex", metavar="HEX", help="raw programs: input memory as hex bytes")
    mem.add_argument("--mem", metavar="FILE", help="raw programs: input memory from a file")
    p.add_argument("--prog", metavar="NAME", help="objects: the program to run")
    data = p.add_mutually_exclusive_group()
    data.add_argument("--data", metavar="FILE", help="objects: the packet (data_in) from a file")
    data.add_argument("--data-hex", metavar="HEX", help="objects: the packet as hex bytes")
    p.add_argument(
        "--ctx",
        metavar="JSON",
        help="objects: ctx_in as a JSON object of fields, a list of u64 arguments or a hex string",
    )
    p.add_argument(
        "--repeat", type=_positive_int, default=1, metavar="N", help="objects: run N times"
    )
    p.add_argument(
        "--ksym",
        action="append",
        metavar="NAME=ADDR",
        help="objects: the address of a __ksym extern (repeatable; decimal or 0x-hex)",
    )
    p.add_argument(
        "--kconfig",
        action="append",
        metavar="NAME=VALUE",
        help="objects: the value of a __kconfig extern (repeatable; decimal or 0x-hex)",
    )
    p.add_argument("--engine", choices=ENGINES, default="interp")
    p.add_argument("--budget", type=_positive_int, metavar="N", help="instruction budget")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.add_argument("--trace", action="store_true", help="print each instruction to stderr")


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    setup: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


_COMMANDS = (
    _Command(
        "conformance",
        "run a directory of bpf_conformance tests",
        _setup_conformance,
        _cmd_conformance,
    ),
    _Command(
        "conformance-plugin",
        "the bpf_conformance plugin protocol (program as hex on stdin, prints r0 in hex)",
        _setup_conformance_plugin,
        _cmd_conformance_plugin,
    ),
    _Command("asm", "assemble a program into raw instruction bytes", _setup_asm, _cmd_asm),
    _Command("disasm", "disassemble an object's programs or raw bytes", _setup_disasm, _cmd_disasm),
    _Command(
        "inspect",
        "programs, maps, struct_ops, license and BTF of an object",
        _setup_inspect,
        _cmd_inspect,
    ),
    _Command("btf", "dump an object's BTF types in C syntax (or raw)", _setup_btf, _cmd_btf),
    _Command(
        "run",
        "run an object's program as BPF_PROG_TEST_RUN does (or a raw program, printing r0)",
        _setup_run,
        _cmd_run,
    ),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pybpf", description="A userspace eBPF runtime: assemble, run, test programs."
    )
    parser.add_argument("--version", action="version", version=f"pybpf {version('pybpf')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in _COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        command.setup(p)
        p.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        # argparse exits by itself for --help/--version (0) and usage errors (2).
        return e.code if isinstance(e.code, int) else 2
    try:
        return args.run(args)
    except BpfError as e:
        print(f"pybpf: error: {e}", file=sys.stderr)
        return e.exit_code
    except OSError as e:
        print(f"pybpf: error: {_describe_os_error(e)}", file=sys.stderr)
        return 2


def _describe_os_error(e: OSError) -> str:
    reason = e.strerror or str(e)
    return f"{e.filename}: {reason}" if e.filename else reason
