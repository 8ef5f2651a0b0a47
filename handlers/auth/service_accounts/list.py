from handlers.auth.service_accounts import PAGE
from proto.erp.auth.v1 import auth_pb2
from runtime import endpoint
from runtime.protobuf import to_dict
from runtime.rest import PAGING
from runtime.schema import Body

QUERY = Body("ListServiceAccountsQuery", PAGING)


@endpoint("GET", "/api/v1/auth/service-accounts", permission="auth.service_accounts:read", query=QUERY,
          tags=["auth"], response=PAGE)
async def list_service_accounts(req, ctx):
    """Your organization's service accounts, with when each last obtained a token (never a secret)."""
    page = await ctx.backends.auth.ListServiceAccounts(auth_pb2.ListServiceAccountsRequest(
        page_size=ctx.query["page_size"], page_token=ctx.query.get("page_token", "")))
    return {"items": [to_dict(a) for a in page.items], "next_page_token": page.next_page_token,
            "total_size": page.total_size}
