"""OSG object wrappers: which fields each class writes, per file version, and how to read them.

A transcription of the osgDB 3.6.5 serializers (``src/osgWrappers/serializers/osg``) for the
classes photogrammetry productions use: the scene graph (Group, Geode, LOD, PagedLOD,
MatrixTransform), Geometry with its arrays and primitive sets (the pre-112 "legacy" encoding
and the later one where they are objects), StateSet, Texture2D with its Image, Material and
the user-data container. A class is a list of associates (each a wrapper whose fields are read
in turn, with the file versions it applies to) and each wrapper a list of serializers with
their own version ranges (``UPDATE_TO_VERSION_SCOPED`` / ``REMOVE_SERIALIZER`` in OSG).

A class not listed raises :class:`OsgbUnsupported` (the file then goes through ``osgconv``),
except in a bracketed stream, where OSG itself skips the block of an unknown class and so do we.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tiles.threed.osgb.stream import OsgbStream, OsgbUnsupported

ALL = 1 << 30
Ser = tuple[str, str, int, int]  # (kind, field name, first version, last version)


def _s(kind: str, name: str = "", first: int = 0, last: int = ALL) -> Ser:
    return (kind, name, first, last)


_OBJECT = [_s("str", "Name"), _s("i32", "DataVariance"), _s("user:wrapped_object", "UserData", 0, 76),
           _s("obj", "UserDataContainer", 77)]
_NODE = [_s("user:sphere", "InitialBound"), _s("obj", "ComputeBoundingSphereCallback"),
         _s("obj", "UpdateCallback"), _s("obj", "EventCallback"), _s("obj", "CullCallback"),
         _s("bool", "CullingActive"), _s("u32", "NodeMask"), _s("user:strings", "Descriptions", 0, 76),
         _s("obj", "StateSet")]
_DRAWABLE = [_s("obj", "StateSet", 0, 155), _s("user:box", "InitialBound"),
             _s("obj", "ComputeBoundingBoxCallback"), _s("obj", "Shape"),
             _s("bool", "SupportsDisplayList"), _s("bool", "UseDisplayList"),
             _s("bool", "UseVertexBufferObjects"), _s("obj", "UpdateCallback", 0, 155),
             _s("obj", "EventCallback", 0, 155), _s("obj", "CullCallback", 0, 155),
             _s("obj", "DrawCallback", 0, 155), _s("u32", "NodeMask", 142), _s("bool", "CullingActive", 145)]
_LEGACY_ARRAYS = ["VertexData", "NormalData", "ColorData", "SecondaryColorData", "FogCoordData"]
_ARRAYS = ["VertexArray", "NormalArray", "ColorArray", "SecondaryColorArray", "FogCoordArray"]
_GEOMETRY = (
    [_s("vec:prims", "PrimitiveSetList")]
    + [_s("user:legacy_array", n, 0, 111) for n in _LEGACY_ARRAYS]
    + [_s("user:legacy_array_list", "TexCoordData", 0, 111),
       _s("user:legacy_array_list", "VertexAttribData", 0, 111), _s("user:nothing", "FastPathHint", 0, 111)]
    + [_s("obj", n, 112) for n in _ARRAYS]
    + [_s("vec:objs", "TexCoordArrayList", 112), _s("vec:objs", "VertexAttribArrayList", 112)]
)
_TEXTURE = (
    [_s("user:u32", n) for n in ("WRAP_S", "WRAP_T", "WRAP_R", "MIN_FILTER", "MAG_FILTER")]
    + [_s("f32", "MaxAnisotropy")]
    + [_s("bool", n) for n in ("UseHardwareMipMapGeneration", "UnRefImageDataAfterApply",
                               "ClientStorageHint", "ResizeNonPowerOfTwoHint")]
    + [_s("vec4d", "BorderColor"), _s("i32", "BorderWidth"), _s("i32", "InternalFormatMode")]
    + [_s("user:u32", n) for n in ("InternalFormat", "SourceFormat", "SourceType")]
    + [_s("bool", "ShadowComparison"), _s("i32", "ShadowCompareFunc"), _s("i32", "ShadowTextureMode"),
       _s("f32", "ShadowAmbient"), _s("user:image_attachment", "ImageAttachment", 95, 153),
       _s("user:str", "Swizzle", 98), _s("f32", "MinLOD", 155), _s("f32", "MaxLOD", 155),
       _s("f32", "LODBias", 155)]
)
SERIALIZERS: dict[str, list[Ser]] = {
    "osg::Object": _OBJECT,
    "osg::Node": _NODE,
    "osg::Group": [_s("user:objects", "Children")],
    "osg::Geode": [_s("user:objects", "Drawables")],
    "osg::LOD": [_s("i32", "CenterMode"), _s("user:center", "UserCenter"), _s("i32", "RangeMode"),
                 _s("user:ranges", "RangeList")],
    "osg::PagedLOD": [_s("user:database_path", "DatabasePath"),
                      _s("u32", "FrameNumberOfLastTraversal", 0, 69),
                      _s("u32", "NumChildrenThatCannotBeExpired"),
                      _s("bool", "DisableExternalChildrenPaging"),
                      _s("user:range_data", "RangeDataList"), _s("user:paged_children", "Children")],
    "osg::Transform": [_s("i32", "ReferenceFrame")],
    "osg::MatrixTransform": [_s("matrix", "Matrix")],
    "osg::Drawable": _DRAWABLE,
    "osg::Geometry": _GEOMETRY,
    "osg::StateSet": [_s("user:modes", "ModeList"), _s("user:attributes", "AttributeList"),
                      _s("user:unit_modes", "TextureModeList"),
                      _s("user:unit_attributes", "TextureAttributeList"),
                      _s("user:uniforms", "UniformList"), _s("i32", "RenderingHint"),
                      _s("i32", "RenderBinMode"), _s("i32", "BinNumber"), _s("str", "BinName"),
                      _s("bool", "NestRenderBins"), _s("obj", "UpdateCallback"),
                      _s("obj", "EventCallback"), _s("user:defines", "DefineList", 151)],
    "osg::StateAttribute": [_s("obj", "UpdateCallback"), _s("obj", "EventCallback")],
    "osg::Texture": _TEXTURE,
    "osg::Texture2D": [_s("image", "Image"), _s("i32", "TextureWidth"), _s("i32", "TextureHeight")],
    "osg::Material": [_s("i32", "ColorMode")]
    + [_s("user:material4", n) for n in ("Ambient", "Diffuse", "Specular", "Emission")]
    + [_s("user:material1", "Shininess")],
    "osg::BufferData": [_s("obj", "BufferObject", 147)],
    "osg::Array": [_s("i32", "Binding"), _s("bool", "Normalize"), _s("bool", "PreserveDataType")],
    "osg::PrimitiveSet": [_s("i32", "NumInstances"), _s("i32", "Mode")],
    "osg::DrawArrays": [_s("i32", "First"), _s("i32", "Count")],
    "osg::DrawArrayLengths": [_s("i32", "First"), _s("vector:<i4:1", "vector")],
    "osg::UserDataContainer": [],
    "osg::DefaultUserDataContainer": [_s("user:wrapped_object", "UserData"),
                                      _s("user:strings", "Descriptions"),
                                      _s("user:objects", "UserObjects")],
}
# array element types: (numpy dtype, components)
ARRAY_TYPES = {
    "FloatArray": ("<f4", 1), "Vec2Array": ("<f4", 2), "Vec3Array": ("<f4", 3), "Vec4Array": ("<f4", 4),
    "DoubleArray": ("<f8", 1), "Vec2dArray": ("<f8", 2), "Vec3dArray": ("<f8", 3), "Vec4dArray": ("<f8", 4),
    "ByteArray": ("i1", 1), "UByteArray": ("u1", 1), "Vec4ubArray": ("u1", 4), "Vec4bArray": ("i1", 4),
    "ShortArray": ("<i2", 1), "UShortArray": ("<u2", 1), "IntArray": ("<i4", 1), "UIntArray": ("<u4", 1),
}
# legacy (file version < 112) array type ids → the same table's names
LEGACY_ARRAY_IDS = {0: "ByteArray", 1: "UByteArray", 2: "ShortArray", 3: "UShortArray", 4: "IntArray",
                    5: "UIntArray", 6: "FloatArray", 7: "DoubleArray", 10: "Vec4bArray",
                    11: "Vec4ubArray", 15: "Vec2Array", 16: "Vec3Array", 17: "Vec4Array",
                    18: "Vec2dArray", 19: "Vec3dArray", 20: "Vec4dArray"}
ELEMENTS = {"DrawElementsUByte": "u1", "DrawElementsUShort": "<u2", "DrawElementsUInt": "<u4"}
_NODE_SINCE_154 = ("osg::Node", 154, ALL)


def _associates(cls: str) -> list[tuple[str, int, int]]:
    """The wrappers whose fields make up ``cls``, in order, with their version ranges."""
    o, n = ("osg::Object", 0, ALL), ("osg::Node", 0, ALL)
    g, bd = ("osg::Group", 0, ALL), ("osg::BufferData", 147, ALL)
    table: dict[str, list[tuple[str, int, int]]] = {
        "osg::Node": [o, n], "osg::Group": [o, n, g], "osg::Geode": [o, n, ("osg::Geode", 0, ALL)],
        "osg::LOD": [o, n, g, ("osg::LOD", 0, ALL)],
        "osg::PagedLOD": [o, n, ("osg::LOD", 0, ALL), ("osg::PagedLOD", 0, ALL)],
        "osg::Transform": [o, n, g, ("osg::Transform", 0, ALL)],
        "osg::MatrixTransform": [o, n, g, ("osg::Transform", 0, ALL), ("osg::MatrixTransform", 0, ALL)],
        "osg::Geometry": [o, _NODE_SINCE_154, ("osg::Drawable", 0, ALL), ("osg::Geometry", 0, ALL)],
        "osg::StateSet": [o, ("osg::StateSet", 0, ALL)],
        "osg::Texture2D": [o, ("osg::StateAttribute", 0, ALL), ("osg::Texture", 0, ALL),
                           ("osg::Texture2D", 0, ALL)],
        "osg::Material": [o, ("osg::StateAttribute", 0, ALL), ("osg::Material", 0, ALL)],
        "osg::DefaultUserDataContainer": [o, ("osg::UserDataContainer", 0, ALL),
                                          ("osg::DefaultUserDataContainer", 0, ALL)],
        "osg::DrawArrays": [o, bd, ("osg::PrimitiveSet", 0, ALL), ("osg::DrawArrays", 0, ALL)],
        "osg::DrawArrayLengths": [o, bd, ("osg::PrimitiveSet", 0, ALL),
                                  ("osg::DrawArrayLengths", 0, ALL)],
    }
    if cls in table:
        return table[cls]
    short = cls.removeprefix("osg::")
    if short in ARRAY_TYPES:
        return [o, bd, ("osg::Array", 0, ALL), (cls, 0, ALL)]
    if short in ELEMENTS:
        return [o, bd, ("osg::PrimitiveSet", 0, ALL), (cls, 0, ALL)]
    raise OsgbUnsupported(f"class {cls}")


def _serializers(name: str) -> list[Ser]:
    short = name.removeprefix("osg::")
    if short in ARRAY_TYPES:
        dtype, n = ARRAY_TYPES[short]
        return [_s(f"vector:{dtype}:{n}", "vector")]
    if short in ELEMENTS:
        return [_s(f"vector:{ELEMENTS[short]}:1", "vector")]
    return SERIALIZERS[name]


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
            associates = _associates(cls)
        except OsgbUnsupported:
            if not s.brackets:
                raise
            self.skipped[cls] = self.skipped.get(cls, 0) + 1
            s.skip_block()
            return None
        obj = Obj(cls)
        self.ids[uid] = obj
        self._fields(obj, associates)
        s.skip_block()
        return obj

    def _fields(self, obj: Obj, associates: list[tuple[str, int, int]]) -> None:
        v = self.version
        for name, first, last in associates:
            if not first <= v <= last:
                continue
            for kind, fname, sfirst, slast in _serializers(name):
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
