"""BPF_MAP_TYPE_LPM_TRIE (kernel/bpf/lpm_trie.c): longest-prefix match.

Place in the pipeline: created by `maps.types.create_map`; helpers call the program face.

Keys are ``struct bpf_lpm_trie_key_u8 { __u32 prefixlen; __u8 data[]; }`` (prefixlen in host
order, data most significant bit first). The trie has the kernel's shape: a binary trie whose
nodes carry a prefix; "intermediate" nodes (no value) join two subtrees and always have two
children. Keeping the same shape keeps ``get_next_key`` in the kernel's documented order:
post-order, so more specific prefixes come before the prefixes that contain them.

Each node with a value owns an Arena region (the key, then the value); replacing or deleting a
value hands its region to ``Arena.defer_free``. Lookups walk the trie without the map lock:
nodes are replaced, never mutated in a way a walker could observe half-done.
"""

from __future__ import annotations

import errno
from typing import Any

from pybpf.maps.base import BpfMap, MapAttrs, SpecialField, round8
from pybpf.memory import Arena, Region
from pybpf.uapi import BPF_EXIST, BPF_NOEXIST

LPM_KEY_HEADER = 4


class _Node:
    __slots__ = ("bits", "child", "data", "im", "prefixlen", "region", "value")

    def __init__(self, prefixlen: int, data: bytes, im: bool) -> None:
        self.prefixlen = prefixlen
        self.data = data
        self.bits = int.from_bytes(data, "big")
        self.im = im
        self.child: list[_Node | None] = [None, None]
        self.region: Region | None = None
        self.value = 0


def _bit(data: bytes, index: int) -> int:
    return (data[index >> 3] >> (7 - (index & 7))) & 1


class LpmTrieMap(BpfMap):
    """The kernel's LPM trie."""

    batch_ops = frozenset({"lookup_batch", "update_batch", "delete_batch"})

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self.data_size = attrs.key_size - LPM_KEY_HEADER
        self.max_prefixlen = self.data_size * 8
        self._root: _Node | None = None
        self._entries = 0

    # ---------------------------------------------------------------- trie primitives

    def _split(self, key: bytes) -> tuple[int, bytes, int]:
        return (
            int.from_bytes(key[:LPM_KEY_HEADER], "little"),
            key[LPM_KEY_HEADER:],
            int.from_bytes(key[LPM_KEY_HEADER:], "big"),
        )

    def _match(self, node: _Node, prefixlen: int, bits: int) -> int:
        """How many leading bits of ``node`` match the key, at most both prefix lengths."""
        limit = min(node.prefixlen, prefixlen)
        diff = node.bits ^ bits
        common = self.max_prefixlen - diff.bit_length()
        return min(common, limit)

    def _leaf(self, prefixlen: int, data: bytes, value: bytes) -> _Node | None:
        node = _Node(prefixlen, data, im=False)
        region = self._alloc(round8(self.key_size) + self.value_size)
        if region is None:
            return None
        view = self._view
        view[region.start : region.start + LPM_KEY_HEADER] = prefixlen.to_bytes(4, "little")
        view[region.start + LPM_KEY_HEADER : region.start + self.key_size] = data
        node.region = region
        node.value = region.start + round8(self.key_size)
        self._store(node.value, value)
        return node

    def _drop(self, node: _Node) -> None:
        if node.region is not None:
            self.arena.defer_free(node.region)
            node.region = None

    # ---------------------------------------------------------------- program face

    def lookup_elem(self, key: bytes, cpu: int = 0) -> int:
        if len(key) != self.key_size:
            return 0
        prefixlen, data, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return 0
        node = self._root
        found: _Node | None = None
        while node is not None:
            matchlen = self._match(node, prefixlen, bits)
            if matchlen == self.max_prefixlen:
                found = node
                break
            if matchlen < node.prefixlen:
                break
            if not node.im:
                found = node
            node = node.child[_bit(data, node.prefixlen)]
        return found.value if found is not None else 0

    def _check_add(self, flags: int) -> int:
        if flags == BPF_EXIST:
            return -errno.ENOENT
        if self._entries >= self.max_entries:
            return -errno.ENOSPC
        return 0

    def update_elem(self, key: bytes, value: bytes, flags: int, cpu: int = 0) -> int:
        if flags > BPF_EXIST or len(key) != self.key_size:
            return -errno.EINVAL
        prefixlen, data, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -errno.EINVAL
        with self._lock:
            parent: _Node | None = None
            side = 0
            node = self._root
            matchlen = 0
            while node is not None:
                matchlen = self._match(node, prefixlen, bits)
                if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                    break
                parent, side = node, _bit(data, node.prefixlen)
                node = node.child[side]

            def attach(new: _Node) -> None:
                if parent is None:
                    self._root = new
                else:
                    parent.child[side] = new

            if node is not None and node.prefixlen == matchlen:
                # Exact prefix already in the trie: replace (or fill an intermediate node).
                if not node.im and flags == BPF_NOEXIST:
                    return -errno.EEXIST
                if node.im:
                    rc = self._check_add(flags)
                    if rc:
                        return rc
                new = self._leaf(prefixlen, data, value)
                if new is None:
                    return -errno.ENOMEM
                new.child = list(node.child)
                attach(new)
                if node.im:
                    self._entries += 1
                self._drop(node)
                return 0
            rc = self._check_add(flags)
            if rc:
                return rc
            new = self._leaf(prefixlen, data, value)
            if new is None:
                return -errno.ENOMEM
            if node is None:
                attach(new)
            elif matchlen == prefixlen:
                # The new prefix contains the node's: it becomes the node's parent.
                new.child[_bit(node.data, matchlen)] = node
                attach(new)
            else:
                im = _Node(matchlen, node.data, im=True)
                if _bit(data, matchlen):
                    im.child = [node, new]
                else:
                    im.child = [new, node]
                attach(im)
            self._entries += 1
            return 0

    def delete_elem(self, key: bytes) -> int:
        if len(key) != self.key_size:
            return -errno.EINVAL
        prefixlen, data, bits = self._split(key)
        if prefixlen > self.max_prefixlen:
            return -errno.EINVAL
        with self._lock:
            # Slots are (holder, side) with holder None meaning the root pointer.
            trim: tuple[_Node | None, int] = (None, 0)
            trim2 = trim
            parent: _Node | None = None
            node = self._root
            matchlen = 0
            while node is not None:
                matchlen = self._match(node, prefixlen, bits)
                if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                    break
                parent = node
                trim2 = trim
                side = _bit(data, node.prefixlen)
                trim = (node, side)
                node = node.child[side]
            if node is None or node.prefixlen != prefixlen or node.prefixlen != matchlen or node.im:
                return -errno.ENOENT
            self._entries -= 1

            def assign(slot: tuple[_Node | None, int], target: _Node | None) -> None:
                holder, where = slot
                if holder is None:
                    self._root = target
                else:
                    holder.child[where] = target

            if node.child[0] is not None and node.child[1] is not None:
                node.im = True
                self._drop(node)
                return 0
            if parent is not None and parent.im and node.child[0] is None and node.child[1] is None:
                sibling = parent.child[1] if parent.child[0] is node else parent.child[0]
                assign(trim2, sibling)
                self._drop(node)
                return 0
            assign(trim, node.child[0] if node.child[0] is not None else node.child[1])
            self._drop(node)
            return 0

    def next_key(self, key: bytes | None) -> bytes | int:
        with self._lock:
            root = self._root
            if root is None:
                return -errno.ENOENT
            search_root: _Node | None = root
            if key is not None and len(key) == self.key_size:
                prefixlen, data, bits = self._split(key)
                if prefixlen <= self.max_prefixlen:
                    stack: list[_Node] = []
                    node: _Node | None = root
                    matchlen = 0
                    while node is not None:
                        stack.append(node)
                        matchlen = self._match(node, prefixlen, bits)
                        if node.prefixlen != matchlen or node.prefixlen == prefixlen:
                            break
                        node = node.child[_bit(data, node.prefixlen)]
                    if node is not None and node.prefixlen == matchlen and not node.im:
                        return self._after(stack)
            return self._leftmost(search_root)

    def _after(self, stack: list[_Node]) -> bytes | int:
        """The post-order successor of ``stack[-1]`` (the path from the root to it)."""
        node = stack[-1]
        i = len(stack) - 1
        while i > 0:
            parent = stack[i - 1]
            if parent.child[0] is node and parent.child[1] is not None:
                return self._leftmost(parent.child[1])
            if not parent.im:
                return self._key_of(parent)
            node = parent
            i -= 1
        return -errno.ENOENT

    def _leftmost(self, node: _Node | None) -> bytes | int:
        """The first non-intermediate node in post-order under ``node``."""
        found: _Node | None = None
        while node is not None:
            if node.im:
                node = node.child[0]
            else:
                found = node
                node = node.child[0] if node.child[0] is not None else node.child[1]
        return -errno.ENOENT if found is None else self._key_of(found)

    def _key_of(self, node: _Node) -> bytes:
        return node.prefixlen.to_bytes(4, "little") + node.data

    # ---------------------------------------------------------------- userspace

    def encode_key(self, key: Any) -> bytes:
        """Also accepts ``(prefixlen, data)`` with ``data`` bytes of the trie's data size."""
        if (
            isinstance(key, tuple)
            and len(key) == 2
            and isinstance(key[0], int)
            and isinstance(key[1], bytes | bytearray)
        ):
            prefixlen, data = key
            if len(data) != self.data_size or not 0 <= prefixlen <= 0xFFFFFFFF:
                raise self._error(
                    errno.EINVAL,
                    f"LPM key needs a u32 prefix length and {self.data_size} data bytes",
                )
            return prefixlen.to_bytes(4, "little") + bytes(data)
        return super().encode_key(key)

    def __len__(self) -> int:
        return self._entries
