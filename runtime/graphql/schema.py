"""The executable schema: SDL files + resolvers + the @requires/@public directives.

- Every root field (Query, Mutation, Subscription) must have a resolver and every resolver a
  field: a mismatch stops start-up naming it, like an unknown cache policy does for REST.
- Arguments and input fields are handed to resolvers in snake_case (graphql-core `out_name`),
  and fields without a resolver read the snake_case key of their parent dict, because
  parents are backend records as `runtime.protobuf.to_dict` shapes them for REST.
- `@requires(permission:)` wraps the field's resolver with the same RBAC check as a REST
  route's `permission=`; root fields without `@public` need a signed-in caller.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from graphql import (
    GraphQLField,
    GraphQLInputObjectType,
    GraphQLObjectType,
    GraphQLSchema,
    assert_valid_schema,
    build_schema,
)
from graphql.language import DirectiveNode

from runtime.errors import Forbidden, Unauthenticated
from runtime.rbac import is_required_permission

ROOTS = ("Query", "Mutation", "Subscription")


def snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


@dataclass(frozen=True)
class FieldRule:
    """Who may resolve one field: `public` (no token needed) and a permission."""

    public: bool
    permission: str | None


def _directive(field: GraphQLField, name: str) -> DirectiveNode | None:
    node = field.ast_node
    for directive in (node.directives if node else ()) or ():
        if directive.name.value == name:
            return directive
    return None


def _permission(where: str, field: GraphQLField) -> str | None:
    directive = _directive(field, "requires")
    if directive is None:
        return None
    value = directive.arguments[0].value.value  # type: ignore[attr-defined]
    if not is_required_permission(value):
        raise ValueError(f"{where}: @requires(permission: {value!r}) must be domain.resource:action, no wildcards")
    return value


def check_access(ctx: Any, rule: FieldRule) -> None:
    """The REST pipeline's authentication and authorization decisions, for one field."""
    if rule.public:
        return
    principal = ctx.principal
    if principal is None:
        raise Unauthenticated("Sign in first: send Authorization: Bearer <access token>")
    if rule.permission is not None and not ctx.resources.policy.allows(principal.roles, rule.permission):
        raise Forbidden(f"Your role does not grant {rule.permission}")


def _bind(fn: Callable[..., Any]) -> Callable[..., Any]:
    def resolve(parent: Any, info: Any, **args: Any) -> Any:
        return fn(info.context, parent, **args)

    return resolve


def _guard(resolve: Callable[..., Any], rule: FieldRule) -> Callable[..., Any]:
    def guarded(parent: Any, info: Any, **args: Any) -> Any:
        check_access(info.context, rule)
        return resolve(parent, info, **args)

    return guarded


def _getter(key: str) -> Callable[..., Any]:
    def get(parent: Any, info: Any) -> Any:
        # Parents are dicts (to_dict records); type() is several times cheaper than the ABC check.
        if type(parent) is dict or isinstance(parent, Mapping):
            return parent.get(key)
        return getattr(parent, key, None)

    return get


@dataclass
class Schema:
    schema: GraphQLSchema
    rules: dict[tuple[str, str], FieldRule]  # every field of an object type

    def rule(self, type_name: str, field_name: str) -> FieldRule | None:
        return self.rules.get((type_name, field_name))


def load_sdl(directory: str | Path) -> str:
    files = sorted(Path(directory).glob("*.graphql"))
    if not files:
        raise ValueError(f"{directory}: no *.graphql files")
    return "\n".join(f.read_text() for f in files)


def build(sdl: str, resolvers: Mapping[tuple[str, str], Callable[..., Any]],
          subscribers: Mapping[tuple[str, str], Callable[..., Any]] | None = None) -> Schema:
    schema = build_schema(sdl)
    assert_valid_schema(schema)
    subscribers = subscribers or {}
    rules: dict[tuple[str, str], FieldRule] = {}
    for key in list(resolvers) + list(subscribers):
        type_ = schema.type_map.get(key[0])
        if not isinstance(type_, GraphQLObjectType) or key[1] not in type_.fields:
            raise ValueError(f"resolver for {key[0]}.{key[1]}: no such field in the schema")
    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, GraphQLInputObjectType):
            for name, input_field in type_.fields.items():
                input_field.out_name = snake(name)
            continue
        if not isinstance(type_, GraphQLObjectType):
            continue
        root = type_.name in ROOTS
        for name, field in type_.fields.items():
            where = f"{type_.name}.{name}"
            for arg_name, arg in field.args.items():
                arg.out_name = snake(arg_name)
            rule = FieldRule(public=not root or _directive(field, "public") is not None,
                             permission=_permission(where, field))
            rules[(type_.name, name)] = rule
            fn = resolvers.get((type_.name, name))
            if type_.name == "Subscription":
                subscribe = subscribers.get((type_.name, name))
                if subscribe is None:
                    raise ValueError(f"{where}: no subscriber (handlers/graphql/resolvers)")
                field.subscribe = _guard(_bind(subscribe), rule)
                field.resolve = _bind(fn) if fn else (lambda event, info, **_: event)
                continue
            if fn is None:
                if root:
                    raise ValueError(f"{where}: no resolver (handlers/graphql/resolvers)")
                resolve = _getter(snake(name))
            else:
                resolve = _bind(fn)
            field.resolve = _guard(resolve, rule) if (rule.permission or not rule.public) else resolve
    return Schema(schema, rules)
