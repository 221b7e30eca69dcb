"""Errors and warnings of the 3D pipeline, each with a stable code.

Errors subclass the domain's ``InvalidInput`` / ``NotFound`` / ``ConfigError`` so the HTTP
layer maps them once (``api/errors.py``). Warnings are collected in a :class:`BuildReport` (and
logged): a build never drops data silently; ``strict`` turns every warning into an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from cadastre.errors import ConfigError, InvalidInput, NotFound

log = logging.getLogger("tiles.threed")


def _rebuild(cls: type, code: str, message: str) -> Exception:
    return cls(code, message)


class _Picklable:
    """Errors cross process boundaries (build workers): keep code and message apart."""

    code: str
    message: str

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (_rebuild, (type(self), self.code, self.message))


class ThreeDInputError(_Picklable, InvalidInput):
    code = "THREED_INVALID_INPUT"


class SrsUnknown(ThreeDInputError):
    code = "THREED_SRS_UNKNOWN"


class OsgbUnreadable(ThreeDInputError):
    """osgconv could not read the file (truncated, corrupt, not an OSG file)."""

    code = "OSGB_UNREADABLE"


class OsgbMissingChild(ThreeDInputError):
    code = "OSGB_MISSING_CHILD"


class TextureMissing(ThreeDInputError):
    code = "THREED_TEXTURE_MISSING"


class ToolMissing(_Picklable, ConfigError):
    code = "THREED_TOOL_MISSING"


class DatasetNotFound(_Picklable, NotFound):
    code = "THREED_DATASET_NOT_FOUND"


class DatasetExists(InvalidInput):
    code = "THREED_DATASET_EXISTS"


_STRICT_ERRORS: dict[str, type[ThreeDInputError]] = {
    "OSGB_MISSING_CHILD": OsgbMissingChild,
    "THREED_TEXTURE_MISSING": TextureMissing,
}


@dataclass(frozen=True)
class BuildWarning:
    code: str
    message: str
    path: str = ""

    def __str__(self) -> str:
        return f"{self.code}: {self.message}" + (f" [{self.path}]" if self.path else "")


@dataclass
class BuildReport:
    """Warnings of one build; ``strict`` raises instead of collecting."""

    strict: bool = False
    warnings: list[BuildWarning] = field(default_factory=list)

    def warn(self, code: str, message: str, path: Path | str = "") -> None:
        if self.strict:
            cls = _STRICT_ERRORS.get(code, ThreeDInputError)
            raise cls(code, f"{message} [{path}]" if path else message)
        w = BuildWarning(code, message, str(path))
        log.warning("%s", w)
        self.warnings.append(w)

    def extend(self, warnings: list[BuildWarning]) -> None:
        self.warnings.extend(warnings)
