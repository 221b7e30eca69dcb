"""Who is asking: the caller's role, scope and stated purpose, and the records as they may see them.

The HTTP layer (``api.auth``) builds a ``Principal`` from a bearer token or an API key; domain
queries take it to scope and filter what they return.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cadastre.access import privacy
from cadastre.access.privacy import Role
from cadastre.codes import county_of


@dataclass(frozen=True)
class Principal:
    role: Role
    account_id: uuid.UUID | None = None
    counties: tuple[str, ...] = ()
    units: tuple[str, ...] = field(default=())   # owners: the unit codes they may see
    subject: str | None = None    # owners: keyed pseudonym of the verified identity; keys: key id
    purpose: str | None = None    # interested parties / departments: stated purpose code
    case_ref: str | None = None   # ... and their case reference (案号)
    fields: tuple[str, ...] = ()  # API keys: 'entity.field' the key may read (empty = policy)

    def in_scope(self, code: str | None) -> bool:
        """County scope of staff accounts and keys (empty = everywhere); code = any unit code."""
        return not self.counties or (code is not None and county_of(code) in self.counties)

    @property
    def audience(self) -> str:
        return self.role.value

    @property
    def actor(self) -> str:
        """Who this is in the audit log: never a name or an ID number."""
        if self.account_id is not None:
            return str(self.account_id)
        if self.subject is not None:
            return f"{self.role.value}:{self.subject}"
        return self.role.value


PUBLIC = Principal(Role.PUBLIC)


def view(who: Principal, entity: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as ``who`` may see it: the privacy policy for their role, narrowed further to
    the fields an API key was granted. Every route returns records through this."""
    out = privacy.apply(entity, who.role, record, who.fields)
    if who.fields:
        out = {k: v for k, v in out.items() if f"{entity}.{k}" in who.fields}
    return out
