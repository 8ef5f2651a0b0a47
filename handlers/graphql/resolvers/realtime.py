"""Subscriptions over the realtime layer (runtime/realtime): its per-worker hub delivers
what anyone publishes, on any instance, to these bounded local subscriptions."""

from runtime.graphql import subscriber
from runtime.realtime import BROADCAST


async def _follow(ctx, channel):
    async with ctx.resources.realtime.listen(ctx.principal, [channel]) as subscription:
        async for message in subscription:
            yield message.as_dict()


@subscriber("Subscription", "notifications")
def notifications(ctx, parent):
    return _follow(ctx, f"notifications:{ctx.principal.user_id}")


@subscriber("Subscription", "systemAnnouncements")
def system_announcements(ctx, parent):
    return _follow(ctx, BROADCAST)
