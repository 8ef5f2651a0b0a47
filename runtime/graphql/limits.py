"""What an operation would cost, measured on its validated document before anything runs.

- depth: nesting of fields (a root field is depth 1);
- aliases: aliased fields (aliases let one request repeat an expensive field many times);
- complexity: 1 per field, multiplied by the page size (`first`, else its SDL default) of
  every paginated list above it, so `employees(first: 100) { nodes { manager { id } } }`
  costs what it would make the backends do.

Introspection fields (`__schema`, `__type`) count 1 each and are not walked: their depth is
the tools' business, and introspection can be switched off (`graphql.introspection`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from graphql import GraphQLSchema, get_named_type
from graphql.language import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableNode,
)

from runtime.graphql.errors import request_error

PAGE_ARGUMENT = "first"


@dataclass(frozen=True)
class Cost:
    depth: int
    aliases: int
    complexity: int


def measure(schema: GraphQLSchema, operation: OperationDefinitionNode,
            fragments: Mapping[str, FragmentDefinitionNode], variables: Mapping[str, Any] | None) -> Cost:
    variables = variables or {}
    depth = aliases = complexity = 0

    def page_size(field_def: Any, node: FieldNode) -> int:
        arg = field_def.args.get(PAGE_ARGUMENT) if field_def is not None else None
        if arg is None:
            return 1
        for given in node.arguments or ():
            if given.name.value == PAGE_ARGUMENT:
                value = given.value
                if isinstance(value, IntValueNode):
                    return max(1, int(value.value))
                if isinstance(value, VariableNode) and isinstance(variables.get(value.name.value), int):
                    return max(1, variables[value.name.value])
        return arg.default_value if isinstance(arg.default_value, int) else 1

    def walk(selection_set: SelectionSetNode, parent: Any, level: int, multiplier: int, seen: frozenset) -> None:
        nonlocal depth, aliases, complexity
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.alias is not None:
                    aliases += 1
                complexity += multiplier
                depth = max(depth, level)
                name = selection.name.value
                if name.startswith("__") or selection.selection_set is None:
                    continue
                field_def = getattr(parent, "fields", {}).get(name)
                child = get_named_type(field_def.type) if field_def is not None else None
                walk(selection.selection_set, child, level + 1, multiplier * page_size(field_def, selection), seen)
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                walk(selection.selection_set, schema.get_type(condition.name.value) if condition else parent,
                     level, multiplier, seen)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen:
                    walk(fragment.selection_set, schema.get_type(fragment.type_condition.name.value),
                         level, multiplier, seen | {name})

    root = schema.get_root_type(operation.operation)
    walk(operation.selection_set, root, 1, 1, frozenset())
    return Cost(depth, aliases, complexity)


def cost_of(schema: GraphQLSchema, prepared: Any, operation: OperationDefinitionNode,
            variables: Mapping[str, Any] | None) -> Cost:
    """`measure`, kept on the cached document when no variable can change the answer."""
    if operation.variable_definitions:
        return measure(schema, operation, prepared.fragments, variables)
    key = operation.name.value if operation.name else None
    cost = prepared.costs.get(key)
    if cost is None:
        cost = prepared.costs[key] = measure(schema, operation, prepared.fragments, None)
    return cost


def check(cost: Cost, config: Any) -> list[dict[str, Any]]:
    """Request errors for every limit the operation goes over (none: it may run)."""
    found = []
    if cost.depth > config.max_depth:
        found.append(request_error(f"Query depth {cost.depth} exceeds the limit of {config.max_depth}",
                                   "QUERY_TOO_DEEP", limit=config.max_depth, actual=cost.depth))
    if cost.aliases > config.max_aliases:
        found.append(request_error(f"Query uses {cost.aliases} aliases; the limit is {config.max_aliases}",
                                   "TOO_MANY_ALIASES", limit=config.max_aliases, actual=cost.aliases))
    if cost.complexity > config.max_complexity:
        found.append(request_error(
            f"Query complexity {cost.complexity} exceeds the limit of {config.max_complexity} "
            "(1 per field, times the page size of each list above it)",
            "QUERY_TOO_COMPLEX", limit=config.max_complexity, actual=cost.complexity))
    return found
