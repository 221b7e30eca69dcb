"""Which fields each OSG class writes, per file version (the osgDB 3.6.5 serializers).

See ``wrappers.py`` for how they are read. A class is a list of associates (each a wrapper
whose fields are read in turn, with the file versions it applies to) and each wrapper a list
of serializers with their own version ranges (``UPDATE_TO_VERSION_SCOPED`` /
``REMOVE_SERIALIZER`` in OSG).
"""

from __future__ import annotations

from tiles.threed.osgb.stream import OsgbUnsupported

ALL = 1 << 30
Ser = tuple[str, str, int, int]  # (kind, field name, first version, last version)


def _s(kind: str, name: str = "", first: int = 0, last: int = ALL) -> Ser:
    return (kind, name, first, last)


_OBJECT = [
    _s("str", "Name"),
    _s("i32", "DataVariance"),
    _s("user:wrapped_object", "UserData", 0, 76),
    _s("obj", "UserDataContainer", 77),
]
_NODE = [
    _s("user:sphere", "InitialBound"),
    _s("obj", "ComputeBoundingSphereCallback"),
    _s("obj", "UpdateCallback"),
    _s("obj", "EventCallback"),
    _s("obj", "CullCallback"),
    _s("bool", "CullingActive"),
    _s("u32", "NodeMask"),
    _s("user:strings", "Descriptions", 0, 76),
    _s("obj", "StateSet"),
]
_DRAWABLE = [
    _s("obj", "StateSet", 0, 155),
    _s("user:box", "InitialBound"),
    _s("obj", "ComputeBoundingBoxCallback"),
    _s("obj", "Shape"),
    _s("bool", "SupportsDisplayList"),
    _s("bool", "UseDisplayList"),
    _s("bool", "UseVertexBufferObjects"),
    _s("obj", "UpdateCallback", 0, 155),
    _s("obj", "EventCallback", 0, 155),
    _s("obj", "CullCallback", 0, 155),
    _s("obj", "DrawCallback", 0, 155),
    _s("u32", "NodeMask", 142),
    _s("bool", "CullingActive", 145),
]
_LEGACY_ARRAYS = ["VertexData", "NormalData", "ColorData", "SecondaryColorData", "FogCoordData"]
_ARRAYS = ["VertexArray", "NormalArray", "ColorArray", "SecondaryColorArray", "FogCoordArray"]
_GEOMETRY = (
    [_s("vec:prims", "PrimitiveSetList")]
    + [_s("user:legacy_array", n, 0, 111) for n in _LEGACY_ARRAYS]
    + [
        _s("user:legacy_array_list", "TexCoordData", 0, 111),
        _s("user:legacy_array_list", "VertexAttribData", 0, 111),
        _s("user:nothing", "FastPathHint", 0, 111),
    ]
    + [_s("obj", n, 112) for n in _ARRAYS]
    + [_s("vec:objs", "TexCoordArrayList", 112), _s("vec:objs", "VertexAttribArrayList", 112)]
)
_TEXTURE = (
    [_s("user:u32", n) for n in ("WRAP_S", "WRAP_T", "WRAP_R", "MIN_FILTER", "MAG_FILTER")]
    + [_s("f32", "MaxAnisotropy")]
    + [
        _s("bool", n)
        for n in (
            "UseHardwareMipMapGeneration",
            "UnRefImageDataAfterApply",
            "ClientStorageHint",
            "ResizeNonPowerOfTwoHint",
        )
    ]
    + [_s("vec4d", "BorderColor"), _s("i32", "BorderWidth"), _s("i32", "InternalFormatMode")]
    + [_s("user:u32", n) for n in ("InternalFormat", "SourceFormat", "SourceType")]
    + [
        _s("bool", "ShadowComparison"),
        _s("i32", "ShadowCompareFunc"),
        _s("i32", "ShadowTextureMode"),
        _s("f32", "ShadowAmbient"),
        _s("user:image_attachment", "ImageAttachment", 95, 153),
        _s("user:str", "Swizzle", 98),
        _s("f32", "MinLOD", 155),
        _s("f32", "MaxLOD", 155),
        _s("f32", "LODBias", 155),
    ]
)
SERIALIZERS: dict[str, list[Ser]] = {
    "osg::Object": _OBJECT,
    "osg::Node": _NODE,
    "osg::Group": [_s("user:objects", "Children")],
    "osg::Geode": [_s("user:objects", "Drawables")],
    "osg::LOD": [
        _s("i32", "CenterMode"),
        _s("user:center", "UserCenter"),
        _s("i32", "RangeMode"),
        _s("user:ranges", "RangeList"),
    ],
    "osg::PagedLOD": [
        _s("user:database_path", "DatabasePath"),
        _s("u32", "FrameNumberOfLastTraversal", 0, 69),
        _s("u32", "NumChildrenThatCannotBeExpired"),
        _s("bool", "DisableExternalChildrenPaging"),
        _s("user:range_data", "RangeDataList"),
        _s("user:paged_children", "Children"),
    ],
    "osg::Transform": [_s("i32", "ReferenceFrame")],
    "osg::MatrixTransform": [_s("matrix", "Matrix")],
    "osg::Drawable": _DRAWABLE,
    "osg::Geometry": _GEOMETRY,
    "osg::StateSet": [
        _s("user:modes", "ModeList"),
        _s("user:attributes", "AttributeList"),
        _s("user:unit_modes", "TextureModeList"),
        _s("user:unit_attributes", "TextureAttributeList"),
        _s("user:uniforms", "UniformList"),
        _s("i32", "RenderingHint"),
        _s("i32", "RenderBinMode"),
        _s("i32", "BinNumber"),
        _s("str", "BinName"),
        _s("bool", "NestRenderBins"),
        _s("obj", "UpdateCallback"),
        _s("obj", "EventCallback"),
        _s("user:defines", "DefineList", 151),
    ],
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
    "osg::DefaultUserDataContainer": [
        _s("user:wrapped_object", "UserData"),
        _s("user:strings", "Descriptions"),
        _s("user:objects", "UserObjects"),
    ],
}
# array element types: (numpy dtype, components)
ARRAY_TYPES = {
    "FloatArray": ("<f4", 1),
    "Vec2Array": ("<f4", 2),
    "Vec3Array": ("<f4", 3),
    "Vec4Array": ("<f4", 4),
    "DoubleArray": ("<f8", 1),
    "Vec2dArray": ("<f8", 2),
    "Vec3dArray": ("<f8", 3),
    "Vec4dArray": ("<f8", 4),
    "ByteArray": ("i1", 1),
    "UByteArray": ("u1", 1),
    "Vec4ubArray": ("u1", 4),
    "Vec4bArray": ("i1", 4),
    "ShortArray": ("<i2", 1),
    "UShortArray": ("<u2", 1),
    "IntArray": ("<i4", 1),
    "UIntArray": ("<u4", 1),
}
# legacy (file version < 112) array type ids → the same table's names
LEGACY_ARRAY_IDS = {
    0: "ByteArray",
    1: "UByteArray",
    2: "ShortArray",
    3: "UShortArray",
    4: "IntArray",
    5: "UIntArray",
    6: "FloatArray",
    7: "DoubleArray",
    10: "Vec4bArray",
    11: "Vec4ubArray",
    15: "Vec2Array",
    16: "Vec3Array",
    17: "Vec4Array",
    18: "Vec2dArray",
    19: "Vec3dArray",
    20: "Vec4dArray",
}
ELEMENTS = {"DrawElementsUByte": "u1", "DrawElementsUShort": "<u2", "DrawElementsUInt": "<u4"}
_NODE_SINCE_154 = ("osg::Node", 154, ALL)


def associates(cls: str) -> list[tuple[str, int, int]]:
    """The wrappers whose fields make up ``cls``, in order, with their version ranges."""
    o, n = ("osg::Object", 0, ALL), ("osg::Node", 0, ALL)
    g, bd = ("osg::Group", 0, ALL), ("osg::BufferData", 147, ALL)
    table: dict[str, list[tuple[str, int, int]]] = {
        "osg::Node": [o, n],
        "osg::Group": [o, n, g],
        "osg::Geode": [o, n, ("osg::Geode", 0, ALL)],
        "osg::LOD": [o, n, g, ("osg::LOD", 0, ALL)],
        "osg::PagedLOD": [o, n, ("osg::LOD", 0, ALL), ("osg::PagedLOD", 0, ALL)],
        "osg::Transform": [o, n, g, ("osg::Transform", 0, ALL)],
        "osg::MatrixTransform": [
            o,
            n,
            g,
            ("osg::Transform", 0, ALL),
            ("osg::MatrixTransform", 0, ALL),
        ],
        "osg::Geometry": [o, _NODE_SINCE_154, ("osg::Drawable", 0, ALL), ("osg::Geometry", 0, ALL)],
        "osg::StateSet": [o, ("osg::StateSet", 0, ALL)],
        "osg::Texture2D": [
            o,
            ("osg::StateAttribute", 0, ALL),
            ("osg::Texture", 0, ALL),
            ("osg::Texture2D", 0, ALL),
        ],
        "osg::Material": [o, ("osg::StateAttribute", 0, ALL), ("osg::Material", 0, ALL)],
        "osg::DefaultUserDataContainer": [
            o,
            ("osg::UserDataContainer", 0, ALL),
            ("osg::DefaultUserDataContainer", 0, ALL),
        ],
        "osg::DrawArrays": [o, bd, ("osg::PrimitiveSet", 0, ALL), ("osg::DrawArrays", 0, ALL)],
        "osg::DrawArrayLengths": [
            o,
            bd,
            ("osg::PrimitiveSet", 0, ALL),
            ("osg::DrawArrayLengths", 0, ALL),
        ],
    }
    if cls in table:
        return table[cls]
    short = cls.removeprefix("osg::")
    if short in ARRAY_TYPES:
        return [o, bd, ("osg::Array", 0, ALL), (cls, 0, ALL)]
    if short in ELEMENTS:
        return [o, bd, ("osg::PrimitiveSet", 0, ALL), (cls, 0, ALL)]
    raise OsgbUnsupported(f"class {cls}")


def serializers(name: str) -> list[Ser]:
    short = name.removeprefix("osg::")
    if short in ARRAY_TYPES:
        dtype, n = ARRAY_TYPES[short]
        return [_s(f"vector:{dtype}:{n}", "vector")]
    if short in ELEMENTS:
        return [_s(f"vector:{ELEMENTS[short]}:1", "vector")]
    return SERIALIZERS[name]
