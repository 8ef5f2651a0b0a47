import base64
import binascii
import logging
from urllib.parse import unquote

from proto.erp.auth.v1 import auth_pb2
from runtime import Reply, endpoint
from runtime.errors import Unauthenticated, ValidationFailed
from runtime.responses import Record
from runtime.schema import Body, Field

log = logging.getLogger("gateway.security")

TOKEN = Body("ClientCredentialsRequest", {
    "grant_type": Field(str, choices=("client_credentials",)),
    "client_id": Field(str, required=False, min_length=1, max_length=64),
    "client_secret": Field(str, required=False, min_length=1, max_length=256),
})

ISSUED = Record("ClientCredentialsToken", {
    "access_token": {"type": "string", "description": "RS256 JWT; send as `Authorization: Bearer ...`"},
    "token_type": {"const": "Bearer"},
    "expires_in": {"type": "integer", "minimum": 0, "description": "Seconds until it expires"},
    "scope": {"type": "string", "description": "The account's grants, space separated"},
}, doc="An access token for a service account (RFC 6749 section 4.4)")


def _basic(header: str | None) -> tuple[str, str] | None:
    """client_id and secret from `Authorization: Basic` (RFC 6749 2.3.1), if sent that way."""
    if not header or not header[:6].lower() == "basic ":
        return None
    try:
        client_id, sep, secret = base64.b64decode(header[6:].strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise Unauthenticated("Malformed Basic credentials") from None
    if not sep:
        raise Unauthenticated("Malformed Basic credentials")
    return unquote(client_id), unquote(secret)


@endpoint("POST", "/api/v1/auth/token", auth=False, body=TOKEN, max_body_bytes=4096, tags=["auth"], response=ISSUED,
          errors={401: "Unknown client, wrong secret, or a deleted account"})
async def issue_token(req, ctx):
    """OAuth 2.0 client-credentials grant for service accounts: a short-lived access token."""
    credentials = _basic(req.get_header("Authorization")) or (ctx.body.get("client_id"), ctx.body.get("client_secret"))
    for name, value in zip(("client_id", "client_secret"), credentials):
        if not value:
            raise ValidationFailed.field(name, "is required (in the body, or as HTTP Basic credentials)")
    issued = await ctx.backends.auth.IssueServiceToken(
        auth_pb2.IssueServiceTokenRequest(client_id=credentials[0], client_secret=credentials[1]))
    account = issued.account
    log.info("service account token issued", extra={"service_account": account.id, "client_id": account.client_id,
                                                    "organization_id": account.organization_id})
    return Reply({"access_token": issued.access_token, "token_type": "Bearer", "expires_in": issued.expires_in,
                  "scope": " ".join(account.permissions)}, message="Token issued")
