"""Two speed-ups of wasmtime-py 50's value conversion, applied process-wide.

1. Handing a `list<u8>` (the response body) to the guest.

wasmtime-py 50 lowers a `list<u8>` only from `bytes` (not `bytearray` or
`memoryview`, not a `list`), and does it one Python call per byte: each
byte becomes a 32-byte `wasmtime_component_val_t` {kind = U8, u8 = byte}
filled by `U8.convert_to_c`. A 2 MB feed page took 1.75 s that way here.

:func:`install` replaces `ListType.convert_to_c` for `list<u8>` with one
that allocates the C array once and writes the kind and value bytes of all
elements with two strided slice assignments on a memoryview of it: the
same C values, in about 0.09 s for 2 MB. Every other list goes through the
original code. The replacement relies on the C layout of the value struct
(checked below; it refuses to install on any other layout) and is applied
process-wide, because wasmtime-py creates a fresh `ListType` for every
conversion and offers no per-type hook.

2. Lifting lists of records (a page of 1,000 skills). wasmtime-py's type
objects recompute their structure on every use: `RecordType.fields`,
`OptionType.payload`, `ListType.element` build new type objects through
several FFI calls each time they are read, and a record reads its
`fields` once per value, so a page of 1,000 skills built some 20,000 type
objects. Type objects are immutable views of the component's types, so
:func:`install` caches these properties per type object: the same code,
computed once per list instead of once per element.
"""

from __future__ import annotations

import ctypes
from typing import Any

from wasmtime import _ffi as ffi
from wasmtime.component import _types

_VAL = ffi.wasmtime_component_val_t
_SIZE = ctypes.sizeof(_VAL)
_KIND_OFFSET = _VAL.kind.offset
_VALUE_OFFSET = _VAL.of.offset
_U8 = ffi.WASMTIME_COMPONENT_U8.value
_LIST = ffi.WASMTIME_COMPONENT_LIST

_original = _types.ListType.convert_to_c
_installed = False


def _layout_is_known() -> bool:
    """The layout this code writes: a 1-byte kind, the union 8-aligned after it."""
    return _SIZE == 32 and _KIND_OFFSET == 0 and _VALUE_OFFSET == 8


def lower_bytes(data: Any, ptr: Any) -> None:
    """Writes `data` as a component `list<u8>` value into `*ptr`."""
    n = len(data)
    raw = ffi.wasmtime_component_vallist_t()
    ffi.wasmtime_component_vallist_new_uninit(raw, n)
    if n:
        array = (ctypes.c_char * (n * _SIZE)).from_address(ctypes.addressof(raw.data.contents))
        view = memoryview(array).cast("B")
        # The rest of each element (padding, the union's other bytes) is
        # never read for a U8 value.
        view[_KIND_OFFSET::_SIZE] = bytes((_U8,)) * n
        view[_VALUE_OFFSET::_SIZE] = data
        view.release()
    ptr.contents.kind = _LIST
    ptr.contents.of.list = raw


def _convert_to_c(self: Any, store: Any, val: Any, ptr: Any) -> None:
    if isinstance(val, (bytes, bytearray)) and self._is_bytes():
        lower_bytes(val, ptr)
        return
    _original(self, store, val, ptr)


_CACHED_PROPERTIES = [
    (_types.ListType, "element"),
    (_types.RecordType, "fields"),
    (_types.TupleType, "elements"),
    (_types.VariantType, "cases"),
    (_types.OptionType, "payload"),
    (_types.ResultType, "ok"),
    (_types.ResultType, "err"),
]
_CACHED_METHODS = [
    (_types.ListType, "_is_bytes"),
    (_types.VariantType, "_tagged"),
    (_types.OptionType, "_tagged"),
    (_types.ResultType, "_tagged"),
]
_originals: dict[tuple[type, str], Any] = {}


def _cached_property(prop: property, slot: str) -> property:
    def get(self: Any) -> Any:
        cache = self.__dict__
        if slot not in cache:
            cache[slot] = prop.fget(self)  # type: ignore[misc]
        return cache[slot]

    return property(get, doc=prop.__doc__)


def _cached_method(method: Any, slot: str) -> Any:
    def call(self: Any) -> Any:
        cache = self.__dict__
        if slot not in cache:
            cache[slot] = method(self)
        return cache[slot]

    return call


def install() -> bool:
    """Installs both; False (and nothing changed) on an unknown value layout."""
    global _installed
    if _installed:
        return True
    if not _layout_is_known():
        return False
    for cls, name in _CACHED_PROPERTIES:
        _originals[(cls, name)] = cls.__dict__[name]
        setattr(cls, name, _cached_property(cls.__dict__[name], f"_skillsmith_{name}"))
    for cls, name in _CACHED_METHODS:
        original = getattr(cls, name)
        _originals[(cls, name)] = cls.__dict__.get(name)
        setattr(cls, name, _cached_method(original, f"_skillsmith_{name}"))
    _types.ListType.convert_to_c = _convert_to_c  # type: ignore[method-assign]
    _installed = True
    return True


def uninstall() -> None:
    """Puts wasmtime-py's own conversions back (for measuring them)."""
    global _installed
    if not _installed:
        return
    for (cls, name), original in _originals.items():
        if original is None:
            delattr(cls, name)
        else:
            setattr(cls, name, original)
    _originals.clear()
    _types.ListType.convert_to_c = _original  # type: ignore[method-assign]
    _installed = False
