"""What every handler shares: the endpoint decorator, errors, body schemas, the reply type."""

from runtime.endpoint import endpoint
from runtime.reply import Reply

__all__ = ["endpoint", "Reply"]
