"""BTF: the `.BTF` type model and parser, `.BTF.ext` records, CO-RE, C/raw dumps and codecs.

Below the loader in the import order (`errors`, `isa` < `btf` < `loader`): the loader hands the
section bytes in and gets a `Btf` / `BtfExt` back; maps use the codecs for keys and values.
"""

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
    "BtfType",
    "EnumValue",
    "IntEncoding",
    "Kind",
    "Linkage",
    "Member",
    "Param",
    "VarSecInfo",
    "essential_name",
    "parse_btf",
]
