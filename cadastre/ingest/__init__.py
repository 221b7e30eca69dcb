"""Survey-file readers: every supported upload becomes one :class:`SurveyDataset`.

Supported: 国土资源部 coordinate TXT (报盘格式), boundary-point CSV, CASS-style DXF (parcels,
boundary points, per-floor unit plans), zipped Shapefile, GeoPackage, GeoJSON, FlatGeobuf and
(with ifcopenshell installed) IFC.  No database access happens here.
"""

from cadastre.ingest.dispatch import read_survey
from cadastre.ingest.model import (
    DEFAULT_MAX_BYTES,
    FEATURE_KINDS,
    ReaderIssue,
    ReaderOptions,
    SurveyDataset,
    SurveyFeature,
    SurveyFormatError,
)

__all__ = [
    "read_survey",
    "SurveyDataset",
    "SurveyFeature",
    "ReaderIssue",
    "ReaderOptions",
    "SurveyFormatError",
    "FEATURE_KINDS",
    "DEFAULT_MAX_BYTES",
]
