"""Channel names, who may subscribe or publish to which, and how a name becomes a routing key.

| channel                  | subscribe                          | publish                                |
|--------------------------|------------------------------------|----------------------------------------|
| `notifications:<user>`   | that user (subscribed on connect)  | that user; else `send_permission`      |
| `org:<organization>`     | members of the organization        | members with `send_permission`         |
| `role:<role>`            | holders of the role                | `send_permission`                      |
| `events:<type>`          | `events_permission`                | `send_permission`                      |
| `system:broadcast`       | everyone (subscribed on connect)   | `broadcast_permission` (super admins)  |

Tenancy: `role:` and `events:` names do not say whose organization they are, so the hub
routes them by a key that adds the organization (`role:admin@<org>`): an admin of one
organization never sees another's role or event messages. `notifications:` (user ids are
unique) and `org:` name their owner already; `system:broadcast` is for everyone on purpose.
Publishing to a user of another organization is refused by the REST handler, which asks the
auth backend (tenancy-scoped) whether the user exists.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from runtime.rbac import grants_allow

if TYPE_CHECKING:
    from runtime.auth.principal import Principal
    from runtime.rbac import Policy

KINDS = ("notifications", "org", "role", "events", "system")
_NAME = re.compile(r"^(notifications|org|role|events|system):([A-Za-z0-9][A-Za-z0-9_.\-]{0,127})$")
BROADCAST = "system:broadcast"
ORG_SCOPED = ("role", "events")


class ChannelError(ValueError):
    """A channel name that is malformed, or that the caller may not use."""


def parse(channel: object) -> tuple[str, str] | None:
    """(kind, name) of a well-formed channel, else None."""
    if not isinstance(channel, str):
        return None
    match = _NAME.fullmatch(channel)
    if match is None:
        return None
    kind, name = match.groups()
    if kind == "system" and channel != BROADCAST:
        return None
    return kind, name


def routing_key(channel: str, organization: str | None) -> str:
    """What the hub and the resume window key on: the channel, plus the organization for
    kinds whose name does not carry it."""
    parsed = parse(channel)
    if parsed is None:
        raise ChannelError(f"{channel!r} is not a channel (expected notifications:<user>, org:<org>, "
                           "role:<role>, events:<type> or system:broadcast)")
    if parsed[0] in ORG_SCOPED:
        if not organization:
            raise ChannelError(f"{channel}: an organization is needed to publish or subscribe")
        return f"{channel}@{organization}"
    return channel


def _allows(principal: "Principal", policy: "Policy", permission: str) -> bool:
    """As the HTTP pipeline decides: a service account by its own grants, a person by roles."""
    if principal.permissions is not None:
        return grants_allow(principal.permissions, permission)
    return policy.allows(principal.roles, permission)


def own_channels(principal: "Principal") -> tuple[str, ...]:
    """What every socket is subscribed to on connect."""
    return (f"notifications:{principal.user_id}", BROADCAST)


def can_subscribe(principal: "Principal", channel: str, policy: "Policy", events_permission: str) -> bool:
    parsed = parse(channel)
    if parsed is None:
        return False
    kind, name = parsed
    if kind == "notifications":
        return name == principal.user_id
    if kind == "org":
        return name == principal.organization_id
    if kind == "role":
        return name in principal.roles
    if kind == "events":
        return _allows(principal, policy, events_permission)
    return True  # system:broadcast


def can_publish(principal: "Principal", channel: str, policy: "Policy", send_permission: str,
                broadcast_permission: str) -> bool:
    """Whether the principal may publish to the channel (not whether the target user is in
    their organization: that needs the auth backend, see handlers/realtime/notify.py)."""
    parsed = parse(channel)
    if parsed is None:
        return False
    kind, name = parsed
    if kind == "notifications" and name == principal.user_id:
        return True  # one's own notifications, always
    if kind == "system":
        return _allows(principal, policy, broadcast_permission)
    if kind == "org" and name != principal.organization_id:
        return False  # never another organization's channel
    return _allows(principal, policy, send_permission)
