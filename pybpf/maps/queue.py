"""BPF_MAP_TYPE_QUEUE and BPF_MAP_TYPE_STACK (kernel/bpf/queue_stack_maps.c).

Place in the pipeline: created by `maps.types.create_map`; the push/pop/peek helpers call the
program face, userspace uses ``push``/``pop``/``peek`` (or update/lookup_and_delete/lookup
with no key, as the syscall maps them).

Values are copied in and out, never pointed at, so they are kept as ``bytes`` in a deque.
Program face: ``push_elem(value, flags)``; ``pop_elem(dst)`` / ``peek_elem(dst)`` write the
value into the ``value_size`` bytes at vaddr ``dst`` (zeros on ENOENT, as the kernel's memset).
Flags: BPF_ANY, or BPF_EXIST to drop the oldest element when full; BPF_NOEXIST or anything
else is EINVAL. Empty: ENOENT. Full without BPF_EXIST: E2BIG.
"""

from __future__ import annotations

import errno
from collections import deque
from typing import Any

from pybpf.maps.base import BpfMap, MapAttrs, SpecialField
from pybpf.memory import Arena
from pybpf.uapi import BPF_ANY, BPF_EXIST, BPF_NOEXIST, ENOTSUPP


class QueueMap(BpfMap):
    """FIFO: pop and peek see the oldest element."""

    keyless = True
    _lifo = False

    def __init__(self, arena: Arena, attrs: MapAttrs, fields: tuple[SpecialField, ...]) -> None:
        super().__init__(arena, attrs, fields)
        self._items: deque[bytes] = deque()

    # ---------------------------------------------------------------- program face

    def push_elem(self, value: bytes, flags: int) -> int:
        if flags & BPF_NOEXIST or flags > BPF_EXIST:
            return -errno.EINVAL
        with self._lock:
            if len(self._items) >= self.max_entries:
                if not flags & BPF_EXIST:
                    return -errno.E2BIG
                # The oldest element is at the left end for both queue and stack.
                self._items.popleft()
            self._items.append(bytes(value))
        return 0

    def _take(self, remove: bool) -> bytes | None:
        with self._lock:
            if not self._items:
                return None
            if self._lifo:
                return self._items.pop() if remove else self._items[-1]
            return self._items.popleft() if remove else self._items[0]

    def _get(self, dst: int, remove: bool) -> int:
        value = self._take(remove)
        if value is None:
            self._view[dst : dst + self.value_size] = bytes(self.value_size)
            return -errno.ENOENT
        self._view[dst : dst + self.value_size] = value
        return 0

    def pop_elem(self, dst: int) -> int:
        return self._get(dst, remove=True)

    def peek_elem(self, dst: int) -> int:
        return self._get(dst, remove=False)

    # ---------------------------------------------------------------- userspace

    def _u_lookup(self, key: bytes, flags: int) -> Any:
        value = self._take(remove=False)
        if value is None:
            raise self._error(errno.ENOENT, "empty")
        return value

    def _u_update(self, key: bytes, value: Any, flags: int) -> None:
        self._check_rc(self.push_elem(value, flags), "push")

    def _u_delete(self, key: bytes) -> None:
        raise self._error(errno.EINVAL, "queue/stack elements cannot be deleted (use pop)")

    def _u_lookup_and_delete(self, key: bytes, flags: int) -> Any:
        value = self._take(remove=True)
        if value is None:
            raise self._error(errno.ENOENT, "empty")
        return value

    def _u_keys(self) -> list[bytes]:
        raise self._error(errno.EINVAL, "queue/stack maps have no keys")

    def push(self, value: Any, flags: int = BPF_ANY) -> None:
        """BPF_MAP_UPDATE_ELEM with a NULL key."""
        self.update(None, value, flags)

    def pop(self) -> Any:
        """BPF_MAP_LOOKUP_AND_DELETE_ELEM with a NULL key."""
        return self.lookup_and_delete(None)

    def peek(self) -> Any:
        """BPF_MAP_LOOKUP_ELEM with a NULL key."""
        return self.lookup(None)

    def snapshot(self) -> list[Any]:
        """The elements in pop order, without removing them."""
        self._check_read()
        with self._lock:
            items = list(self._items)
        if self._lifo:
            items.reverse()
        return [self.decode_value(v) for v in items]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Any:
        return iter(self.snapshot())

    def __contains__(self, value: Any) -> bool:
        raise self._error(ENOTSUPP, "membership is not defined for queue/stack maps")


class StackMap(QueueMap):
    """LIFO: pop and peek see the newest element."""

    _lifo = True
