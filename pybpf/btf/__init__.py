"""BTF: the `.BTF` type model and parser, `.BTF.ext` records, CO-RE, C/raw dumps and codecs.

Below the loader in the import order (`errors`, `isa` < `btf` < `loader`): the loader hands the
section bytes in and gets a `Btf` / `BtfExt` back; maps use the codecs for keys and values.
"""

from pybpf.btf.codec import decode_value, encode_value
from pybpf.btf.core import CoreResult, core_resolve
from pybpf.btf.dump import dump_c, dump_raw
from pybpf.btf.ext import BtfExt, CoreRelo, CoreReloKind, FuncInfo, LineInfo, parse_btf_ext
from pybpf.btf.parse import parse_btf
from pybpf.btf.types import (
    Btf,
    BtfType,
    EnumValue,
    IntEncoding,
    Kind,
    Linkage,
    Member,
    Param,
    VarSecInfo,
    essential_name,
)

__all__ = [
    "Btf",
    "BtfExt",
    "BtfType",
    "CoreRelo",
    "CoreReloKind",
    "CoreResult",
    "EnumValue",
    "FuncInfo",
    "IntEncoding",
    "Kind",
    "LineInfo",
    "Linkage",
    "Member",
    "Param",
    "VarSecInfo",
    "core_resolve",
    "decode_value",
    "dump_c",
    "dump_raw",
    "encode_value",
    "essential_name",
    "parse_btf",
    "parse_btf_ext",
]
