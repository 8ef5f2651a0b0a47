"""Build a complete gRPC servicer for a CRUD service from its store's resource table.

For each resource it serves List<Plural>, Get<Name>, BatchGet<Plural>, Create<Name>,
Update<Name> and Delete<Name>, all scoped to the caller's ``x-organization-id``.
"""

from __future__ import annotations

from types import ModuleType

from google.protobuf import empty_pb2

from emulator.services.rpc import require_org
from emulator.services.server import ServiceServer
from emulator.services.store import Resource, Store


def _methods(r: Resource, pb2: ModuleType, store: Store) -> dict[str, object]:
    kind, one, many = r.name, r.field, r.plural.lower()
    list_response = getattr(pb2, f"List{r.plural}Response")
    batch_response = getattr(pb2, f"BatchGet{r.plural}Response")

    async def list_(self, request, context):
        rows, token, total = store.list(
            kind, require_org(context), page_size=request.page_size,
            page_token=request.page_token,
            filters={f: getattr(request, f) for f in r.filters},
            query=getattr(request, "query", ""),
        )
        return list_response(**{many: rows}, next_page_token=token, total_size=total)

    async def get(self, request, context):
        return store.get(kind, require_org(context), request.id)

    async def batch_get(self, request, context):
        return batch_response(**{many: store.batch_get(kind, require_org(context), request.ids)})

    async def create(self, request, context):
        return store.create(kind, require_org(context), getattr(request, one))

    async def update(self, request, context):
        return store.update(kind, require_org(context), getattr(request, one), request.update_mask)

    async def delete(self, request, context):
        store.delete(kind, require_org(context), request.id)
        return empty_pb2.Empty()

    return {
        f"List{r.plural}": list_, f"Get{kind}": get, f"BatchGet{r.plural}": batch_get,
        f"Create{kind}": create, f"Update{kind}": update, f"Delete{kind}": delete,
    }


def crud_servicer(base: type, pb2: ModuleType, store: Store) -> object:
    """An instance of the generated ``base`` servicer class serving every resource of ``store``."""
    methods: dict[str, object] = {}
    for resource in store.resources.values():
        methods.update(_methods(resource, pb2, store))
    service = pb2.DESCRIPTOR.services_by_name[base.__name__.removesuffix("Servicer")]
    missing = {m.name for m in service.methods} - methods.keys()
    if missing:  # fail at start-up, not with UNIMPLEMENTED at the first call
        raise TypeError(f"{service.full_name}: no resource serves {sorted(missing)}")
    return type(base.__name__, (base,), methods)()


def crud_server(name: str, pb2: ModuleType, pb2_grpc: ModuleType, service: str,
                store: Store) -> ServiceServer:
    """A ServiceServer for the generated ``service`` (e.g. "CrmService") backed by ``store``."""
    servicer = crud_servicer(getattr(pb2_grpc, f"{service}Servicer"), pb2, store)
    add = getattr(pb2_grpc, f"add_{service}Servicer_to_server")
    full_name = pb2.DESCRIPTOR.services_by_name[service].full_name
    return ServiceServer(name, full_name, lambda server: add(servicer, server))
