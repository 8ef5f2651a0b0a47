"""What a handler returns when plain data is not enough: a message, a status, headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    data: Any = None
    message: str = "OK"
    status: int | None = None  # None: the route's declared status
    headers: dict[str, str] = field(default_factory=dict)
