"""ctypes bindings to the system's (or a given) libbpf, for the recording scripts.

Place in the test suite: shared by the two oracle scripts, `tests/kernel/record.py` (kernel
goldens) and `tests/corpus/record_libbpf.py` (libbpf's view of the corpus objects). Neither is
a test; they import this module after putting `tests/` on `sys.path`. It declares each libbpf
entry point they call once, the option structs they pass, and the object/program/map walks.
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Callable
from ctypes import (
    CFUNCTYPE,
    POINTER,
    Structure,
    c_bool,
    c_char_p,
    c_int,
    c_size_t,
    c_uint,
    c_uint32,
    c_uint64,
    c_void_p,
)
from pathlib import Path

LIBBPF_SONAME = "libbpf.so.1"


class TestRunOpts(Structure):
    """struct bpf_test_run_opts of libbpf 1.1 (bpf.h)."""

    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


SAMPLE_CB = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)
PRINT_FN = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)

# name -> (restype, argtypes); every entry point exists in libbpf 1.1 and later.
SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "libbpf_major_version": (c_uint32, []),
    "libbpf_minor_version": (c_uint32, []),
    "libbpf_bpf_prog_type_str": (c_char_p, [c_int]),
    "libbpf_bpf_map_type_str": (c_char_p, [c_int]),
    "libbpf_bpf_attach_type_str": (c_char_p, [c_int]),
    "libbpf_set_print": (c_void_p, [PRINT_FN]),
    "libbpf_strerror": (c_int, [c_int, c_char_p, c_size_t]),
    "libbpf_num_possible_cpus": (c_int, []),
    "bpf_object__open_file": (c_void_p, [c_char_p, c_void_p]),
    "bpf_object__load": (c_int, [c_void_p]),
    "bpf_object__close": (None, [c_void_p]),
    "bpf_object__name": (c_char_p, [c_void_p]),
    "bpf_object__kversion": (c_uint, [c_void_p]),
    "bpf_object__next_program": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__next_map": (c_void_p, [c_void_p, c_void_p]),
    "bpf_object__find_program_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_object__find_map_by_name": (c_void_p, [c_void_p, c_char_p]),
    "bpf_program__name": (c_char_p, [c_void_p]),
    "bpf_program__section_name": (c_char_p, [c_void_p]),
    "bpf_program__fd": (c_int, [c_void_p]),
    "bpf_program__type": (c_int, [c_void_p]),
    "bpf_program__expected_attach_type": (c_int, [c_void_p]),
    "bpf_program__autoload": (c_bool, [c_void_p]),
    "bpf_program__flags": (c_uint32, [c_void_p]),
    "bpf_program__insn_cnt": (c_size_t, [c_void_p]),
    "bpf_map__fd": (c_int, [c_void_p]),
    "bpf_map__name": (c_char_p, [c_void_p]),
    "bpf_map__type": (c_int, [c_void_p]),
    "bpf_map__key_size": (c_uint32, [c_void_p]),
    "bpf_map__value_size": (c_uint32, [c_void_p]),
    "bpf_map__max_entries": (c_uint32, [c_void_p]),
    "bpf_map__map_flags": (c_uint32, [c_void_p]),
    "bpf_map__numa_node": (c_uint32, [c_void_p]),
    "bpf_map__map_extra": (c_uint64, [c_void_p]),
    "bpf_map__is_internal": (c_bool, [c_void_p]),
    "bpf_map__autocreate": (c_bool, [c_void_p]),
    "bpf_map__btf_key_type_id": (c_uint32, [c_void_p]),
    "bpf_map__btf_value_type_id": (c_uint32, [c_void_p]),
    "bpf_map__inner_map": (c_void_p, [c_void_p]),
    "bpf_map__get_pin_path": (c_char_p, [c_void_p]),
    "bpf_map__set_pin_path": (c_int, [c_void_p, c_char_p]),
    "bpf_map__initial_value": (c_void_p, [c_void_p, POINTER(c_size_t)]),
    "bpf_map_update_elem": (c_int, [c_int, c_void_p, c_void_p, c_uint64]),
    "bpf_map_lookup_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_lookup_and_delete_elem": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_map_get_next_key": (c_int, [c_int, c_void_p, c_void_p]),
    "bpf_prog_test_run_opts": (c_int, [c_int, POINTER(TestRunOpts)]),
    "ring_buffer__new": (c_void_p, [c_int, SAMPLE_CB, c_void_p, c_void_p]),
    "ring_buffer__consume": (c_int, [c_void_p]),
    "ring_buffer__free": (None, [c_void_p]),
}
# Newer than libbpf 1.1: bound when the library has them.
OPTIONAL_SIGNATURES: dict[str, tuple[object, list[object]]] = {
    "bpf_object__prepare": (c_int, [c_void_p]),  # libbpf >= 1.6
}


class LibbpfError(RuntimeError):
    """A libbpf call failed; the message names the call and the errno."""


def check(rc: int, what: str) -> None:
    """Raise LibbpfError for a negative return: libbpf returns -errno, or -1 with errno set."""
    if rc < 0:
        raise LibbpfError(f"{what}: {_errno_text(-rc if rc != -1 else ctypes.get_errno())}")


def _errno_text(code: int) -> str:
    return f"{errno.errorcode.get(code, code)} ({os.strerror(code)})"


class Libbpf:
    """One loaded libbpf with every entry point of SIGNATURES typed."""

    def __init__(self, path: str = LIBBPF_SONAME) -> None:
        self.lib = ctypes.CDLL(path, use_errno=True)
        for name, (restype, argtypes) in SIGNATURES.items():
            self._bind(name, restype, argtypes)
        for name, (restype, argtypes) in OPTIONAL_SIGNATURES.items():
            if hasattr(self.lib, name):
                self._bind(name, restype, argtypes)

    def _bind(self, name: str, restype: object, argtypes: list[object]) -> None:
        fn = getattr(self.lib, name)
        fn.restype, fn.argtypes = restype, argtypes

    def has(self, name: str) -> bool:
        return hasattr(self.lib, name)

    @property
    def version(self) -> str:
        return f"{self.lib.libbpf_major_version()}.{self.lib.libbpf_minor_version()}"

    def strerror(self, err: int) -> str:
        buf = ctypes.create_string_buffer(256)
        self.lib.libbpf_strerror(err, buf, len(buf))
        return f"{err}: {buf.value.decode()}"

    def open(self, path: Path) -> int:
        obj = self.lib.bpf_object__open_file(str(path).encode(), None)
        if not obj:
            what = f"bpf_object__open_file({path})"
            raise LibbpfError(f"{what}: {_errno_text(ctypes.get_errno())}")
        return obj

    def programs(self, obj: int) -> list[int]:
        return self._walk(self.lib.bpf_object__next_program, obj)

    def maps(self, obj: int) -> list[int]:
        return self._walk(self.lib.bpf_object__next_map, obj)

    @staticmethod
    def _walk(next_fn: Callable[[int, int | None], int | None], obj: int) -> list[int]:
        out, item = [], None
        while True:
            item = next_fn(obj, item)
            if not item:
                return out
            out.append(item)
