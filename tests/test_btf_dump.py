"""`dump_c`: the C header compiles and reproduces every struct's size and member offsets."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from btf_support import FIXTURES, btf_bytes, read_sections

from pybpf.btf import Btf, Kind, parse_btf
from pybpf.btf.dump import dump_c

CLANG = shutil.which("clang-19") or shutil.which("clang")
OBJECTS = sorted(p.name for p in FIXTURES.glob("*.o") if ".BTF" in read_sections(p))


def _layout_asserts(btf: Btf) -> str:
    """_Static_asserts pinning the BTF layout of every named struct/union."""
    lines = ["#include <stddef.h>"]
    for t in btf.types:
        if t.kind not in (Kind.STRUCT, Kind.UNION) or not t.name:
            continue
        tag = f"{t.kind.name.lower()} {t.name}"
        lines.append(f'_Static_assert(sizeof({tag}) == {t.size}, "{t.name} size");')
        for m in t.members:
            if m.name and not m.bitfield_size:
                lines.append(
                    f"_Static_assert(offsetof({tag}, {m.name}) == {m.bit_offset // 8}, "
                    f'"{t.name}.{m.name}");'
                )
    return "\n".join(lines) + "\n"


def test_dump_c_shapes() -> None:
    text = dump_c(parse_btf(btf_bytes("btf_kinds.o")))
    assert "typedef const volatile counter_t cv_counter_t;" in text
    assert "typedef int (*binop_t)(int, int);" in text
    assert "\tunsigned int b: 5;" in text
    assert "\tHUGE = 78187493530ULL," in text
    assert "\tBLUE = -3," in text
    assert "} __attribute__((packed));" in text
    assert "struct opaque;" in text and "union uopaque;" in text
    assert "\tlong long matrix[2][3];" in text
    assert "\tstruct {\n\t\tunsigned short x;\n\t\tunsigned short y;\n\t} point;" in text
    assert " * global int combine(int x, int y);" in text
    # Typedefs come before their users, forward declarations before pointers to them.
    assert text.index("typedef u32_t counter_t;") < text.index("struct record {")
    assert text.index("struct opaque;") < text.index("struct opaque *opq;")


@pytest.mark.skipif(CLANG is None, reason="clang not installed")
@pytest.mark.parametrize("name", OBJECTS)
def test_dump_c_compiles_with_the_btf_layout(name: str, tmp_path: Path) -> None:
    btf = parse_btf(btf_bytes(name))
    header = tmp_path / "dump.c"
    header.write_text(dump_c(btf) + _layout_asserts(btf))
    result = subprocess.run(
        [str(CLANG), "-target", "bpf", "-fsyntax-only", "-Wall", "-Werror", str(header)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
