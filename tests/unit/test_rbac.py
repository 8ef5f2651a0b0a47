from __future__ import annotations

from types import SimpleNamespace

import pytest

from runtime.config import ConfigError, load_config
from proto.erp.auth.v1.contract import ROLES as DEFAULT_ROLES
from runtime.rbac import Policy, check_roles, is_required_permission


def roles(spec: dict) -> dict:
    return {n: SimpleNamespace(parents=tuple(p), permissions=tuple(g)) for n, (p, g) in spec.items()}


@pytest.fixture(scope="module")
def policy() -> Policy:
    return Policy(load_config(env={}).rbac.roles)


@pytest.mark.parametrize(
    "role, permission",
    [
        ("viewer", "crm.customers:read"),
        ("employee", "crm.customers:read"),  # inherited from viewer
        ("employee", "crm.contacts:create"),
        ("manager", "crm.contacts:create"),  # inherited from employee
        ("manager", "finance.invoices:read"),
        ("sales_manager", "crm.deals:delete"),
        ("hr_manager", "hrm.employees:delete"),
        ("hr_manager", "crm.customers:update"),  # via manager
        ("admin", "finance.payments:delete"),  # via finance_manager
        ("admin", "auth.users:update"),
        ("super_admin", "anything.at_all:whatsoever"),
    ],
)
def test_higher_roles_inherit(policy, role, permission):
    assert policy.allows([role], permission)


@pytest.mark.parametrize(
    "role, permission",
    [
        ("viewer", "crm.customers:create"),
        ("viewer", "hrm.employees:read"),  # an employee grant: never inherited downwards
        ("employee", "crm.customers:create"),
        ("manager", "crm.customers:delete"),  # a sales_manager grant
        ("manager", "hrm.employees:update"),
        ("sales_manager", "hrm.employees:update"),  # siblings share nothing but their parents
        ("hr_manager", "finance.invoices:create"),
        ("finance_manager", "crm.deals:delete"),
        ("admin", "system.keys:rotate"),  # a super_admin grant
        ("nobody", "crm.customers:read"),  # unknown roles grant nothing
    ],
)
def test_never_the_reverse(policy, role, permission):
    assert not policy.allows([role], permission)


def test_several_roles_add_up(policy):
    assert not policy.allows(["viewer"], "finance.invoices:delete")
    assert policy.allows(["viewer", "finance_manager"], "finance.invoices:delete")
    assert not policy.allows([], "crm.customers:read")


def test_wildcards_per_segment():
    p = Policy(roles({"a": ([], ["crm.*:read", "*.invoices:update", "hrm.employees:*"])}))
    assert p.allows(["a"], "crm.deals:read")
    assert not p.allows(["a"], "crm.deals:update")
    assert p.allows(["a"], "finance.invoices:update")
    assert not p.allows(["a"], "finance.invoices:delete")
    assert p.allows(["a"], "hrm.employees:delete")
    assert not p.allows(["a"], "hrm.departments:delete")


def test_cycle_is_refused_with_the_path():
    with pytest.raises(ValueError, match="cycle: a -> b -> c -> a"):
        check_roles(roles({"a": (["b"], []), "b": (["c"], []), "c": (["a"], [])}))


def test_unknown_parent_is_refused():
    with pytest.raises(ValueError, match=r"roles.b.parents: unknown role 'ghost'"):
        check_roles(roles({"a": ([], []), "b": (["ghost"], [])}))


@pytest.mark.parametrize("grant", ["crm.customers", "crm:read", "CRM.x:read", "crm.customers:read:extra", "crm.cust omers:read", "**.x:y"])
def test_malformed_grant_is_refused(grant):
    with pytest.raises(ValueError, match="is not valid"):
        check_roles(roles({"a": ([], [grant])}))


def test_required_permissions_have_no_wildcards():
    assert is_required_permission("crm.customers:read")
    assert not is_required_permission("crm.*:read")
    assert not is_required_permission("crm.customers")


def test_policy_from_yaml_and_startup_errors(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text("rbac:\n  roles:\n    intern:\n      parents: [viewer]\n      permissions: ['hrm.departments:read']\n")
    cfg = load_config(good, env={})
    assert set(cfg.rbac.roles) == set(DEFAULT_ROLES) | {"intern"}
    assert Policy(cfg.rbac.roles).allows(["intern"], "crm.customers:read")

    cyclic = tmp_path / "cyclic.yaml"
    cyclic.write_text("rbac:\n  roles:\n    viewer:\n      parents: [admin]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(cyclic, env={})
    assert "cycle" in str(caught.value) and "\n" not in str(caught.value)

    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("rbac:\n  roles:\n    viewer:\n      parents: [overlord]\n")
    with pytest.raises(ConfigError, match="unknown role 'overlord'"):
        load_config(unknown, env={})
