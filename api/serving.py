"""How ``cadastre serve`` runs uvicorn: logging that names the worker process when there are
several (an access line then says which process answered)."""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG


def log_config(workers: int) -> dict[str, Any]:
    """uvicorn's logging configuration, with ``[pid]`` after the level when ``workers`` > 1."""
    config = copy.deepcopy(LOGGING_CONFIG)
    if workers > 1:
        for formatter in config["formatters"].values():
            formatter["fmt"] = formatter["fmt"].replace("%(levelprefix)s",
                                                        "%(levelprefix)s [%(process)d]")
    return config
