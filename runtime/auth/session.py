"""The sign-in answer shared by login, register and refresh."""

from __future__ import annotations

from typing import Any

from runtime.protobuf import to_dict


def token_answer(tokens: Any) -> dict[str, Any]:
    """An auth TokenResponse as the REST contract shapes it (DESIGN.md section 3)."""
    return {
        "user": to_dict(tokens.user),
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": "Bearer",
        "expires_in": int(tokens.expires_in),
    }
