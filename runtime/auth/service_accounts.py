"""What the gateway does for service accounts beyond verifying their tokens like any other."""

from __future__ import annotations

import time
from typing import Any

from runtime.auth.principal import SESSION_PREFIX

# Longer than any access token the auth service issues (15 minutes by default): the
# revocation must outlive every token of the generation; an entry costs a few bytes.
REVOKE_FOR = 86400


async def revoke_generation(resources: Any, generation: str) -> None:
    """Refuse, on every instance, each token issued under a secret's `generation` (the
    tokens' `sid`): what rotating a secret or deleting an account promises."""
    if generation:
        await resources.revocations.revoke(SESSION_PREFIX + generation, time.time() + REVOKE_FOR)
