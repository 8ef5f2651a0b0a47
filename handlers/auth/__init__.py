"""Sign-in, sessions and the signed-in user, over the auth service (required: nobody can
sign in without it)."""
from proto.erp.auth.v1 import auth_pb2_grpc
from runtime.domains import Domain

DOMAIN = Domain("auth", auth_pb2_grpc.AuthServiceStub, address="localhost:50051", required=True,
                cache_policies={"user_profile": {"ttl": "60s", "scope": "user"}})
