from valkey.exceptions import ValkeyError

from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.errors import BackendUnavailable, Forbidden, NotFound, ValidationFailed
from runtime.realtime import channels
from runtime.schema import Body, Field

NOTIFICATION = Body(
    "NotificationRequest",
    {
        "channel": Field(str, max_length=150, doc="notifications:<user>, org:<org>, role:<role>, "
                                                  "events:<type> or system:broadcast"),
        "data": Field(dict, doc="Any JSON object; delivered as the message's data"),
    },
)

# What was published, exactly as subscribers receive it.
MESSAGE = {
    "type": "object",
    "required": ["type", "channel", "data", "timestamp", "user_id", "message_id"],
    "properties": {
        "type": {"type": "string", "enum": ["message"]},
        "channel": {"type": "string"},
        "data": {"type": "object"},
        "timestamp": {"type": "string", "format": "date-time"},
        "user_id": {"type": ["string", "null"], "description": "the sender"},
        "message_id": {"type": "string", "description": "<ms>-<sequence>; resume after it with since"},
    },
}


@endpoint("POST", "/api/v1/notifications", body=NOTIFICATION, status=202, max_body_bytes=65_536, tags=("realtime",),
          response=MESSAGE,
          errors={403: "The caller may not publish to this channel (another organization's, or without "
                       "realtime.notifications:send / realtime.broadcast:send)",
                  404: "notifications:<user> names no user of the caller's organization"})
async def notify(req, ctx):
    """Publish a realtime message to a user, an organization, a role or everyone."""
    channel, principal, hub = ctx.body["channel"], ctx.principal, ctx.resources.realtime
    parsed = channels.parse(channel)
    if parsed is None:
        raise ValidationFailed.field("channel", "must be notifications:<user>, org:<org>, role:<role>, "
                                                "events:<type> or system:broadcast")
    if not hub.can_publish(principal, channel):
        raise Forbidden(f"You may not publish to {channel} (needs {_needed(ctx, parsed)})")
    kind, name = parsed
    if kind == "notifications" and name != principal.user_id:
        # Tenancy: the auth backend answers NOT_FOUND for a user of another organization.
        try:
            await ctx.backends.auth.GetUser(auth_pb2.GetUserRequest(id=name))
        except NotFound:
            raise NotFound("No such user in your organization", errors={"channel": ["no such user"]}) from None
    try:
        message = await ctx.publish(channel, ctx.body["data"])
    except (ValkeyError, OSError) as exc:
        raise BackendUnavailable("Realtime delivery is unavailable") from exc
    return Reply(message.as_dict(), message="Published")


def _needed(ctx, parsed) -> str:
    s = ctx.config.realtime
    if parsed[0] == "org" and parsed[1] != ctx.principal.organization_id:
        return "to be a member of that organization"
    return s.broadcast_permission if parsed[0] == "system" else s.send_permission
