"""Users of the caller's organization, managed by its admins (runtime/auth/user_admin.py
says who may change whom). The collection and the request schemas the handlers share."""

from proto.erp.auth.v1 import auth_pb2
from runtime.rest import Collection
from runtime.schema import EMAIL, NEW_PASSWORD, Body, Field, text

USERS = Collection("auth", auth_pb2.User, fields={})  # reads only: writes have their own RPCs

ROLE_NAME = text(1, 64, doc="A role of the policy (GET /graphql `roles`), e.g. manager")

CREATE = Body("CreateUserRequest", {
    "email": EMAIL,
    "first_name": text(1, 100),
    "last_name": text(1, 100),
    "password": NEW_PASSWORD,
    "roles": Field(list, required=False, min_length=1, max_length=10, items=ROLE_NAME,
                   doc="Roles to hold, none above your own; default: employee"),
})

UPDATE = Body("UpdateUserRequest", {
    "first_name": text(1, 100),
    "last_name": text(1, 100),
    "is_active": Field(bool, doc="false: the user cannot sign in, and every session of theirs ends"),
}, partial=True)

ROLE = Body("AssignRoleRequest", {"role": ROLE_NAME})
