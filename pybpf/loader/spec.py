"""`ObjectSpec` and friends: what the loader reads out of an object file, as pure data.

The loader's output and `pybpf.object`'s input (see "The pipeline"): no map is created and
nothing runs here. Programs come with their subprograms already appended (libbpf's layout)
and with symbolic relocations that say which instruction refers to which map, kfunc, ksym or
kconfig extern; `object.py` binds those names to the runtime's objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pybpf.isa import Instruction, with_pcs
from pybpf.isa.opcodes import BY_NAME
from pybpf.uapi import (
    BpfAttachType,
    BpfMapType,
    BpfProgType,
    ProgFlag,
    license_is_gpl_compatible,
)

_HELPER_CALL = BY_NAME["call"][0]


class RelocKind(StrEnum):
    """What an instruction of a program refers to.

    - ``map_fd``: an lddw of a map (src_reg BPF_PSEUDO_MAP_FD, imm 0 until bound);
    - ``map_value``: an lddw of a global-data map's value + ``offset`` (BPF_PSEUDO_MAP_VALUE;
      the offset is also in the second slot's imm);
    - ``kconfig``: an lddw of a ``__kconfig`` extern: the value of the ``.kconfig`` map at
      ``offset`` (BPF_PSEUDO_MAP_VALUE);
    - ``ksym``: an lddw of a ``__ksym`` variable or function address (imm 0 until bound);
    - ``kfunc``: a ``call.kfunc`` of the ``__ksym`` function ``target``;
    - ``func``: an lddw of a function address (a callback; BPF_PSEUDO_FUNC), imm relative;
    - ``subprog``: a bpf-to-bpf call (``call.local``), imm relative.
    For ``func`` and ``subprog``, ``offset`` is the target's start pc in the program.
    """

    MAP_FD = "map_fd"
    MAP_VALUE = "map_value"
    KCONFIG = "kconfig"
    KSYM = "ksym"
    KFUNC = "kfunc"
    FUNC = "func"
    SUBPROG = "subprog"


@dataclass(frozen=True, slots=True)
class Relocation:
    pc: int
    kind: RelocKind
    target: str
    offset: int = 0
    weak: bool = False


@dataclass(frozen=True, slots=True)
class Subprogram:
    """A function appended to a program: its name, section and start pc in the program."""

    name: str
    section: str
    start: int
    length: int  # in instruction slots


@dataclass(frozen=True, slots=True)
class CoreRelocation:
    """A `.BTF.ext` CO-RE record of a program, after it was (or was not) applied.

    ``local_value`` is what the compiler wrote, ``target_value`` what the target BTF says
    (None when no target BTF was given: the instruction is left as compiled)."""

    pc: int
    kind: str
    type_id: int
    type_name: str
    access: str
    local_value: int | None
    target_value: int | None
    poisoned: bool = False
    reason: str = ""


@dataclass
class ProgramSpec:
    name: str
    section: str  # without the "?" of a SEC("?...") program
    prog_type: BpfProgType
    expected_attach_type: BpfAttachType | None
    attach_to: str | None
    autoload: bool
    sleepable: bool
    prog_flags: ProgFlag
    insns: list[Instruction]
    subprograms: list[Subprogram] = field(default_factory=list)
    relocations: list[Relocation] = field(default_factory=list)
    func_info: list[Any] = field(default_factory=list)  # pybpf.btf FuncInfo, pcs in insns
    line_info: list[Any] = field(default_factory=list)  # pybpf.btf LineInfo, pcs in insns
    core_relos: list[CoreRelocation] = field(default_factory=list)
    global_function: bool = True
    section_offset: int = 0  # byte offset of the program's own code in its section

    @property
    def type(self) -> str:
        """The program type's short name: ``xdp``, ``sched_cls``, ``kprobe``, ..."""
        return self.prog_type.short

    @property
    def slot_count(self) -> int:
        return sum(insn.slots for insn in self.insns)

    def line_at(self, pc: int) -> Any:
        """The line-info record covering ``pc`` (the last one at or before it), or None."""
        found = None
        for record in self.line_info:
            if record.insn_off > pc:
                break
            found = record
        return found

    def subprogram_at(self, pc: int) -> str:
        """The name of the function (the program or an appended subprogram) holding ``pc``."""
        for sub in self.subprograms:
            if sub.start <= pc < sub.start + sub.length:
                return sub.name
        return self.name

    @property
    def kfuncs(self) -> list[str]:
        return sorted({r.target for r in self.relocations if r.kind is RelocKind.KFUNC})

    @property
    def helpers(self) -> list[int]:
        """The helper ids the program calls (``call`` with src_reg 0), sorted."""
        return sorted(
            {
                insn.imm
                for _, insn in with_pcs(self.insns)
                if insn.opcode == _HELPER_CALL.opcode and insn.src_reg == _HELPER_CALL.selector[1]
            }
        )

    @property
    def maps_used(self) -> list[str]:
        kinds = (RelocKind.MAP_FD, RelocKind.MAP_VALUE)
        return sorted({r.target for r in self.relocations if r.kind in kinds})


@dataclass
class MapSpec:
    name: str
    type: BpfMapType
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0
    numa_node: int = 0
    pinning: int = 0
    map_extra: int = 0
    key_type_id: int = 0
    value_type_id: int = 0
    inner: MapSpec | None = None
    init_slots: dict[int, str] = field(default_factory=dict)
    data: bytes | None = None  # initial value of .data/.rodata maps (.bss, .kconfig: zeros)
    section: str = ""
    internal: str | None = None  # "data" | "rodata" | "bss" | "kconfig" for internal maps
    real_name: str = ""  # the ELF section name of an internal map (its name is shortened)
    autocreate: bool = True


@dataclass
class StructOpsSpec:
    name: str
    type_name: str
    type_id: int
    size: int
    data: bytes
    members: dict[str, str]  # function-pointer member -> program name
    link: bool
    section: str
    autocreate: bool = True


@dataclass(frozen=True, slots=True)
class ExternSpec:
    """A ``__kconfig`` or ``__ksym`` extern declared by the object."""

    name: str
    kind: str  # "kconfig" | "ksym"
    weak: bool
    btf_id: int  # the VAR or FUNC in the object's BTF
    is_func: bool = False  # a kfunc
    typed: bool = False  # a ksym variable with a BTF type (not `const void`)
    offset: int = 0  # kconfig: offset of its value in the .kconfig map
    size: int = 0  # kconfig: size of its value
    essential_name: str = ""  # the name without a ___flavour suffix

    @property
    def lookup_name(self) -> str:
        return self.essential_name or self.name


@dataclass
class ObjectSpec:
    path: str | None
    name: str
    license: str
    version: int
    btf: Any  # pybpf.btf.Btf | None
    programs: dict[str, ProgramSpec] = field(default_factory=dict)
    maps: dict[str, MapSpec] = field(default_factory=dict)
    struct_ops: dict[str, StructOpsSpec] = field(default_factory=dict)
    externs: dict[str, ExternSpec] = field(default_factory=dict)
    btf_ext: Any = None  # pybpf.btf BtfExt | None

    @property
    def gpl_compatible(self) -> bool:
        return license_is_gpl_compatible(self.license)

    @property
    def kfuncs(self) -> list[str]:
        return sorted({k for p in self.programs.values() for k in p.kfuncs})

    @property
    def helpers(self) -> list[int]:
        return sorted({h for p in self.programs.values() for h in p.helpers})
