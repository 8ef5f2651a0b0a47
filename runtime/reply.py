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
    # Set: `data` is a finished body (bytes) of this media type, sent without the envelope.
    media_type: str | None = None
