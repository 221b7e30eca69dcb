"""What a batch's worker process runs: render and sign (``Composer``), nothing else.

Kept apart from the database code so that a worker imports neither psycopg nor shapely (about
40 MB less per process); the package's own ``__init__`` exports lazily for the same reason.
"""

from __future__ import annotations

from cadastre.certificates.compose import Composer, DocumentParts, SignedDocument
from cadastre.certificates.signing import OfficeSigner, SigningFiles

_composer: Composer | None = None


def start(files: SigningFiles) -> None:
    """Process initializer: load the office's signer once."""
    global _composer
    _composer = Composer(OfficeSigner(files))


def compose(parts: DocumentParts) -> SignedDocument:
    assert _composer is not None, "worker not started"
    return _composer.compose(parts)
