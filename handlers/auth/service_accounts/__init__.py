"""Service accounts: machine clients of an organization (a bank feed, a warehouse), managed by
its admins. The request schema the handlers of this package share."""

from proto.erp.auth.v1 import auth_pb2
from runtime.responses import Record
from runtime.rest import Page
from runtime.schema import Body, Field, text

GRANT = Field(str, min_length=5, max_length=100, doc='"domain.resource:action", "*" allowed per segment')

CREATE = Body("CreateServiceAccountRequest", {
    "name": text(1, 100, doc="Unique in the organization, e.g. bank-feed"),
    "permissions": Field(list, min_length=1, max_length=50, items=GRANT,
                         doc="Grants, none beyond what the creating admin holds"),
})


# What create and rotate answer: the account and, this once, its client secret.
WITH_SECRET = Record("ServiceAccountWithSecret", {
    "client_secret": {"type": "string", "description": "Shown only in this answer: store it now"},
}, extends=auth_pb2.ServiceAccount, doc="A service account and its new client secret")
PAGE = Page(auth_pb2.ServiceAccount)
