"""The same two reads written the way many Python teams would write them instead: FastAPI on
uvicorn, PyJWT verifying the token on every request (PyJWKClient caches the keys), valkey-py
for the revocation check, a fixed-window rate limit and the response cache, and the same gRPC
backends. It is the comparison the benchmark report makes, not a second gateway: no RBAC
policy, no single flight, no circuit breaker.

    uvicorn --factory loadtests.bench.fastapi_app:create_app --loop uvloop --http httptools

Configured by the gateway's own ERP_* variables (as `gw backends` writes them).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Any

import grpc
import jwt
import valkey.asyncio
from fastapi import Depends, FastAPI, Header, HTTPException, Response
from google.protobuf.json_format import MessageToDict

from proto.erp.auth.v1 import auth_pb2, auth_pb2_grpc
from proto.erp.crm.v1 import crm_pb2, crm_pb2_grpc

CACHE_TTL = 60
RATE_LIMIT = 1_000_000_000  # per minute: as in the gateway's bench settings, never reached


def create_app() -> FastAPI:
    env = os.environ
    jwks = jwt.PyJWKClient(env["ERP_JWT_JWKS_URL"], cache_keys=True)
    cache = valkey.asyncio.Valkey(host=env.get("ERP_REDIS_HOST", "localhost"), port=int(env.get("ERP_REDIS_PORT", 6379)))
    stubs: dict[str, Any] = {}

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        auth = grpc.aio.insecure_channel(env["ERP_GRPC_SERVICES_AUTH"])
        crm = grpc.aio.insecure_channel(env["ERP_GRPC_SERVICES_CRM"])
        stubs["auth"], stubs["crm"] = auth_pb2_grpc.AuthServiceStub(auth), crm_pb2_grpc.CrmServiceStub(crm)
        yield
        await auth.close()
        await crm.close()
        await cache.aclose()

    app = FastAPI(lifespan=lifespan)

    async def claims(authorization: str = Header()) -> dict:
        token = authorization.removeprefix("Bearer ")
        try:
            key = jwks.get_signing_key_from_jwt(token).key
            decoded = jwt.decode(token, key, algorithms=["RS256"], audience="erp-api-gateway", issuer="erp-auth-service")
        except jwt.PyJWTError as exc:
            raise HTTPException(401, str(exc)) from None
        if await cache.exists(f"revoked:{decoded['jti']}"):
            raise HTTPException(401, "token revoked")
        window = f"rl:{decoded['sub']}:{int(time.time() // 60)}"
        count = await cache.incr(window)
        if count == 1:
            await cache.expire(window, 60)
        if count > RATE_LIMIT:
            raise HTTPException(429, "rate limited")
        return decoded

    def metadata(c: dict) -> tuple:
        return (("x-user-id", c["sub"]), ("x-organization-id", c["org"]), ("x-roles", ",".join(c["roles"])))

    async def cached(key: str, load) -> Response:
        body = await cache.get(key)
        if body is None:
            message = await load()
            body = json.dumps({"success": True, "message": "OK", "data": MessageToDict(message, preserving_proto_field_name=True)})
            await cache.set(key, body, ex=CACHE_TTL)
        return Response(body, media_type="application/json")

    @app.get("/health")
    async def health() -> dict:
        return {"success": True, "message": "OK", "data": {"status": "ok"}}

    @app.get("/api/v1/auth/me")
    async def me(c: dict = Depends(claims)) -> Response:
        return await cached(f"me:{c['sub']}", lambda: stubs["auth"].GetUser(
            auth_pb2.GetUserRequest(id=c["sub"]), metadata=metadata(c), timeout=5))

    @app.get("/api/v1/crm/customers/{customer_id}")
    async def customer(customer_id: str, c: dict = Depends(claims)) -> Response:
        return await cached(f"customer:{c['org']}:{customer_id}", lambda: stubs["crm"].GetCustomer(
            crm_pb2.GetCustomerRequest(id=customer_id), metadata=metadata(c), timeout=5))

    return app
