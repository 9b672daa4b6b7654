"""The map runtime: every supported BPF map type, with the kernel's semantics and errno values.

Place in the pipeline: above `memory` (map values live in the Arena) and `btf` (key/value
codecs), below `helpers` (which call the program face) and `object` (which creates maps from
an ObjectSpec with `create_map`). `MAP_TYPES` is the single table of supported map types.
"""

from pybpf.maps.array import ArrayMap, PercpuArrayMap
from pybpf.maps.base import (
    ENOTSUPP,
    BatchResult,
    BpfMap,
    MapAttrs,
    SpecialField,
    map_by_handle,
    value_lock,
)
from pybpf.maps.bloom import BloomFilterMap, jhash, jhash2
from pybpf.maps.fdarray import (
    BPF_F_CURRENT_CPU,
    BPF_F_INDEX_MASK,
    ArrayOfMapsMap,
    HashOfMapsMap,
    PerfEventArrayMap,
    ProgArrayMap,
)
from pybpf.maps.hash import HashMap, LruHashMap, LruPercpuHashMap, PercpuHashMap
from pybpf.maps.lpm import LpmTrieMap
from pybpf.maps.queue import QueueMap, StackMap
from pybpf.maps.ringbuf import (
    BPF_RB_AVAIL_DATA,
    BPF_RB_CONS_POS,
    BPF_RB_FORCE_WAKEUP,
    BPF_RB_NO_WAKEUP,
    BPF_RB_PROD_POS,
    BPF_RB_RING_SIZE,
    RingBufMap,
)
from pybpf.maps.types import MAP_TYPES, MapTypeInfo, create_map, map_type_info

__all__ = [
    "BPF_F_CURRENT_CPU",
    "BPF_F_INDEX_MASK",
    "BPF_RB_AVAIL_DATA",
    "BPF_RB_CONS_POS",
    "BPF_RB_FORCE_WAKEUP",
    "BPF_RB_NO_WAKEUP",
    "BPF_RB_PROD_POS",
    "BPF_RB_RING_SIZE",
    "ENOTSUPP",
    "MAP_TYPES",
    "ArrayMap",
    "ArrayOfMapsMap",
    "BatchResult",
    "BloomFilterMap",
    "BpfMap",
    "HashMap",
    "HashOfMapsMap",
    "LpmTrieMap",
    "LruHashMap",
    "LruPercpuHashMap",
    "MapAttrs",
    "MapTypeInfo",
    "PercpuArrayMap",
    "PercpuHashMap",
    "PerfEventArrayMap",
    "ProgArrayMap",
    "QueueMap",
    "RingBufMap",
    "SpecialField",
    "StackMap",
    "create_map",
    "jhash",
    "jhash2",
    "map_by_handle",
    "map_type_info",
    "value_lock",
]
