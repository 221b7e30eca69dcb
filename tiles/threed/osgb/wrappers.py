"""Reading OSG objects from the binary stream, class by class (fields: ``specs.py``).

A transcription of the osgDB 3.6.5 serializers (``src/osgWrappers/serializers/osg``) for the
classes photogrammetry productions use: the scene graph (Group, Geode, LOD, PagedLOD,
MatrixTransform), Geometry with its arrays and primitive sets (the pre-112 "legacy" encoding
and the later one where they are objects), StateSet, Texture2D with its Image, Material and
the user-data container. A class is a list of associates (each a wrapper whose fields are read
in turn, with the file versions it applies to) and each wrapper a list of serializers with
their own version ranges (``UPDATE_TO_VERSION_SCOPED`` / ``REMOVE_SERIALIZER`` in OSG).

Unknown classes raise :class:`OsgbUnsupported` (the file then goes through ``osgconv``),
except in a bracketed stream, where OSG itself skips the block of an unknown class and so do we.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiles.threed.osgb.specs import (
    ALL,
    ARRAY_TYPES,
    ELEMENTS,
    LEGACY_ARRAY_IDS,
    associates,
    serializers,
)
from tiles.threed.osgb.stream import OsgbStream, OsgbUnsupported


@dataclass
class Obj:
    """A decoded OSG object: its class and fields (sub-objects are :class:`Obj` too)."""

    cls: str
    fields: dict[str, Any] = field(default_factory=dict)

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)


@dataclass
class ImageRef:
    name: str
    decision: int  # 0 inline pixels, 1 inline file bytes, 2 external, 3 written out
    data: bytes | None = None


@dataclass
class Primitive:
    mode: int
    indices: Any  # numpy integer array


class Decoder:
    """Reads objects from an :class:`OsgbStream`; ``skipped`` counts unknown classes jumped."""

    def __init__(self, stream: OsgbStream) -> None:
        self.s = stream
        self.version = stream.version
        self.ids: dict[int, Any] = {}
        self.legacy_arrays: dict[int, Any] = {}
        self.skipped: dict[str, int] = {}

    # ---------------------------------------------------------------- objects
    def object(self) -> Obj | None:
        s = self.s
        cls = s.string()
        if cls == "NULL":
            return None
        s.begin()
        uid = s.u32()
        if uid in self.ids:
            s.skip_block()
            return self.ids[uid]  # type: ignore[no-any-return]
        try:
            assoc = associates(cls)
        except OsgbUnsupported:
            if not s.brackets:
                raise
            self.skipped[cls] = self.skipped.get(cls, 0) + 1
            s.skip_block()
            return None
        obj = Obj(cls)
        self.ids[uid] = obj
        self._fields(obj, assoc)
        s.skip_block()
        return obj

    def _fields(self, obj: Obj, assoc: list[tuple[str, int, int]]) -> None:
        v = self.version
        for name, first, last in assoc:
            if not first <= v <= last:
                continue
            for kind, fname, sfirst, slast in serializers(name):
                if sfirst <= v <= slast:
                    value = self._read(kind)
                    if value is not None or fname not in obj.fields:
                        obj.fields[fname] = value

    def _read(self, kind: str) -> Any:
        s = self.s
        if kind == "str":
            return s.string()
        if kind == "i32":
            return s.i32()
        if kind == "u32":
            return s.u32()
        if kind == "bool":
            return s.bool()
        if kind == "f32":
            return s.f32()
        if kind == "vec4d":
            return s.doubles(4)
        if kind == "matrix":
            s.begin()
            m = s.doubles(16)
            s.end()
            return m
        if kind == "obj":
            return self.object() if s.bool() else None
        if kind == "image":
            return self.image() if s.bool() else None
        if kind == "vec:objs":
            return [self.object() for _ in range(s.u32())]
        if kind == "vec:prims":
            n = s.u32()
            if self.version >= 112:
                return [self._primitive_object(self.object()) for _ in range(n)]
            return [self.legacy_primitive() for _ in range(n)]
        if kind.startswith("vector:"):
            _, dtype, ncomp = kind.split(":")
            return s.array(s.u32(), dtype, int(ncomp))
        if kind.startswith("user:"):
            if not s.bool():  # a user serializer first says whether it wrote anything
                return None
            return getattr(self, "_u_" + kind[5:])()
        raise OsgbUnsupported(f"serializer kind {kind}")

    def image(self) -> ImageRef | None:
        s = self.s
        if self.version > 94:
            s.string()  # class name
        uid = s.u32()
        if uid in self.ids:
            return self.ids[uid]  # type: ignore[no-any-return]
        name = s.string()
        s.i32()  # write hint
        decision = s.i32()
        ref = ImageRef(name, decision)
        if decision == 0:
            for _ in range(9):
                s.i32()
            s.raw(s.u32())  # raw pixels: not used (reported like the osgconv path)
            for _ in range(s.u32()):
                s.i32()
        elif decision == 1:
            ref.data = s.raw(s.u32())
        self.ids[uid] = ref
        self._fields(Obj("osg::Image"), [("osg::Object", 0, ALL)])
        return ref

    # ---------------------------------------------------------------- primitive sets
    def _primitive_object(self, obj: Obj | None) -> Primitive | None:
        if obj is None:
            return None
        short = obj.cls.removeprefix("osg::")
        mode = int(obj.get("Mode") or 0)
        if short == "DrawArrays":
            first = int(obj.get("First") or 0)
            return Primitive(mode, _arange(first, int(obj.get("Count") or 0)))
        if short in ELEMENTS:
            return Primitive(mode, obj.get("vector"))
        raise OsgbUnsupported(f"primitive set {obj.cls}")

    def legacy_primitive(self) -> Primitive:
        s = self.s
        ptype, mode = s.i32(), s.i32()
        if self.version > 96:
            s.u32()  # instances
        if ptype == 50:
            first, count = s.i32(), s.i32()
            return Primitive(mode, _arange(first, count))
        if ptype in (52, 53, 54):
            n = s.u32()
            s.begin()
            idx = s.array(n, {52: "u1", 53: "<u2", 54: "<u4"}[ptype], 1)
            s.end()
            return Primitive(mode, idx)
        raise OsgbUnsupported(f"legacy primitive set type {ptype}")

    def legacy_array(self) -> Any:
        s = self.s
        uid = s.u32()
        if uid in self.legacy_arrays:
            return self.legacy_arrays[uid]
        type_id = s.i32()
        if type_id not in LEGACY_ARRAY_IDS:
            raise OsgbUnsupported(f"legacy array type {type_id}")
        dtype, ncomp = ARRAY_TYPES[LEGACY_ARRAY_IDS[type_id]]
        n = s.i32()
        s.begin()
        arr = s.array(n, dtype, ncomp)
        s.end()
        self.legacy_arrays[uid] = arr
        return arr

    # ---------------------------------------------------------------- user serializers
    def _u_nothing(self) -> bool:
        return True

    def _u_u32(self) -> int:
        return self.s.u32()

    def _u_str(self) -> str:
        return self.s.string()

    def _bracketed(self, body: Any) -> Any:
        self.s.begin()
        out = body()
        self.s.end()
        return out

    def _u_wrapped_object(self) -> Obj | None:
        return self._bracketed(self.object)  # type: ignore[no-any-return]

    def _u_sphere(self) -> tuple[float, ...]:
        return self._bracketed(lambda: self.s.doubles(4))  # type: ignore[no-any-return]

    def _u_box(self) -> tuple[float, ...]:
        return self._bracketed(lambda: self.s.doubles(6))  # type: ignore[no-any-return]

    def _u_center(self) -> tuple[float, ...]:
        return self.s.doubles(4)

    def _list(self, item: Any, always_bracket: bool = True) -> list[Any]:
        n = self.s.u32()
        if not always_bracket and n == 0:
            return []
        return self._bracketed(lambda: [item() for _ in range(n)])  # type: ignore[no-any-return]

    def _u_strings(self) -> list[str]:
        return self._list(self.s.string)

    def _u_objects(self) -> list[Obj | None]:
        return self._list(self.object)

    def _u_paged_children(self) -> list[Obj | None]:
        return self._list(self.object, always_bracket=False)

    def _u_ranges(self) -> list[tuple[float, ...]]:
        return self._list(lambda: self.s.floats(2))

    def _u_database_path(self) -> str:
        return self.s.string() if self.s.bool() else ""

    def _u_range_data(self) -> list[str]:
        names = self._list(self.s.string)
        self._list(lambda: self.s.floats(2))  # priority offsets and scales
        return names

    def _u_modes(self) -> list[tuple[int, int]]:
        return self._list(lambda: (self.s.u32(), self.s.i32()), always_bracket=False)

    def _u_attributes(self) -> list[Obj | None]:
        def one() -> Obj | None:
            obj = self.object()
            self.s.i32()  # StateAttribute value (ON / OVERRIDE …)
            return obj

        return self._list(one, always_bracket=False)

    def _u_uniforms(self) -> list[Obj | None]:
        def one() -> Obj | None:
            obj = self.object()
            self.s.i32()
            return obj

        return self._list(one)

    def _u_unit_modes(self) -> list[list[tuple[int, int]]]:
        return self._list(lambda: self._u_modes())

    def _u_unit_attributes(self) -> list[list[Obj | None]]:
        return self._list(lambda: self._u_attributes())

    def _u_defines(self) -> list[tuple[str, str, int]]:
        return self._list(lambda: (self.s.string(), self.s.string(), self.s.i32()))

    def _u_image_attachment(self) -> tuple[int, ...]:
        s = self.s
        return (s.u32(), s.i32(), s.u8(), s.i32(), s.u32(), s.u32())

    def _u_material4(self) -> tuple[float, ...]:
        self.s.bool()
        return self.s.floats(8)

    def _u_material1(self) -> tuple[float, ...]:
        self.s.bool()
        return self.s.floats(2)

    def _u_legacy_array(self) -> Any:
        return self._bracketed(self._legacy_array_field)

    def _u_legacy_array_list(self) -> list[Any]:
        return self._list(lambda: self._bracketed(self._legacy_array_field))

    def _legacy_array_field(self) -> Any:
        s = self.s
        arr = self.legacy_array() if s.bool() else None
        if s.bool():
            raise OsgbUnsupported("indexed arrays (deprecated osg::IndexArray)")
        s.i32()  # binding
        s.i32()  # normalize
        return arr


def _arange(first: int, count: int) -> Any:
    import numpy as np

    return np.arange(first, first + count, dtype=np.uint32)
