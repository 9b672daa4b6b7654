"""The loader: a `clang -target bpf` object file -> `ObjectSpec` (pure data, nothing created).

Second stage of the pipeline (ARCHITECTURE.md, "The pipeline"): `load_spec` reads the ELF
(`elf.py`, the only elftools user), BTF and .BTF.ext (`pybpf.btf`), classifies program
sections by libbpf's SEC() table (`sections.py`), collects maps (`maps.py`), applies CO-RE
(`core.py`) and lays each program out with its subprograms (`link.py`). `summary.py` is what
`pybpf inspect` prints.
"""

from pybpf.loader.load import load_spec, object_name
from pybpf.loader.sections import SECTION_DEFS, SectionInfo, classify_section
from pybpf.loader.spec import (
    CoreRelocation,
    ExternSpec,
    MapSpec,
    ObjectSpec,
    ProgramSpec,
    Relocation,
    RelocKind,
    StructOpsSpec,
    Subprogram,
)

__all__ = [
    "SECTION_DEFS",
    "CoreRelocation",
    "ExternSpec",
    "MapSpec",
    "ObjectSpec",
    "ProgramSpec",
    "RelocKind",
    "Relocation",
    "SectionInfo",
    "StructOpsSpec",
    "Subprogram",
    "classify_section",
    "load_spec",
    "object_name",
]
