"""Demo data for local runs and tests: two organizations with users, CRM, HR and finance records.

DEVELOPMENT CREDENTIALS ONLY: every demo user signs in with ``DEMO_PASSWORD``. They exist only
in the in-memory emulator and must never be configured anywhere real.
"""

from __future__ import annotations

from decimal import Decimal

from emulator.services.auth import AuthState
from emulator.services.store import Store
from proto.erp.common.v1.common_pb2 import Money
from proto.erp.crm.v1 import crm_pb2
from proto.erp.finance.v1 import finance_pb2
from proto.erp.hrm.v1 import hrm_pb2

DEMO_PASSWORD = "demo-pass-123"  # development credential, emulator only

ACME, GLOBEX = ("Acme Corporation", "acme.example"), ("Globex Industries", "globex.example")

# (role, first name, last name, department, title) per organization; the email is
# "<role with hyphens>@<domain>", e.g. hr-manager@acme.example.
_PEOPLE = {
    ACME: [
        ("super_admin", "Alex", "Morgan", "Operations", "Platform Administrator"),
        ("admin", "Jordan", "Lee", "Operations", "Chief Operating Officer"),
        ("manager", "Taylor", "Brooks", "Operations", "Operations Manager"),
        ("employee", "Casey", "Rivera", "Engineering", "Software Engineer"),
        ("viewer", "Riley", "Chen", "Sales", "Sales Analyst"),
        ("hr_manager", "Morgan", "Patel", "Human Resources", "Head of People"),
        ("finance_manager", "Jamie", "Nguyen", "Finance", "Finance Director"),
        ("sales_manager", "Drew", "Carter", "Sales", "Head of Sales"),
    ],
    GLOBEX: [
        ("admin", "Hank", "Scorpio", "Research", "Chief Executive Officer"),
        ("employee", "Homer", "Simpson", "Research", "Safety Inspector"),
    ],
}

DEMO_USERS: list[tuple[str, str, str]] = [  # (email, role, organization name)
    (f"{role.replace('_', '-')}@{org[1]}", role, org[0])
    for org, people in _PEOPLE.items() for role, *_ in people
]

# (name, domain, phone, status, contact names)
_CUSTOMERS = {
    ACME: [
        ("Initech", "initech.example", "+1 512 555 0101", "active", ["Bill Lumbergh", "Peter Gibbons"]),
        ("Umbrella Health", "umbrella.example", "+1 206 555 0102", "active", ["Alice Abernathy"]),
        ("Stark Logistics", "starklog.example", "+1 212 555 0103", "prospect", ["Pepper Potts", "Happy Hogan"]),
        ("Wayne Foods", "waynefoods.example", "+1 312 555 0104", "lead", ["Lucius Fox"]),
        ("Cyberdyne Systems", "cyberdyne.example", "+1 408 555 0105", "active", ["Miles Dyson"]),
        ("Soylent Farms", "soylent.example", "+1 503 555 0106", "inactive", ["Sol Roth"]),
        ("Tyrell Robotics", "tyrell.example", "+1 213 555 0107", "prospect", ["Rachael Rosen"]),
        ("Wonka Confectionery", "wonka.example", "+44 20 5550 0108", "lead", ["Charlie Bucket"]),
    ],
    GLOBEX: [
        ("Springfield Power", "spp.example", "+1 939 555 0201", "active", ["Waylon Smithers"]),
        ("Kwik-E-Mart", "kwikemart.example", "+1 939 555 0202", "active", ["Apu Nahasapeemapetilon"]),
        ("Krusty Burger", "krusty.example", "+1 939 555 0203", "prospect", ["Herschel Krustofsky"]),
        ("Duff Brewing", "duff.example", "+1 939 555 0204", "active", ["Duffman"]),
        ("Moe's Tavern", "moes.example", "+1 939 555 0205", "lead", ["Moe Szyslak"]),
        ("Lard Lad Donuts", "lardlad.example", "+1 939 555 0206", "inactive", ["Lard Lad"]),
        ("Monorail Inc", "monorail.example", "+1 939 555 0207", "lead", ["Lyle Lanley"]),
        ("Itchy & Scratchy Studios", "itchy.example", "+1 939 555 0208", "prospect", ["Roger Meyers"]),
    ],
}

_DEAL_STAGES = ("won", "negotiation", "proposal", "qualification", "lost")
_ACCOUNTS = [  # (code, name, type, balance)
    ("1000", "Cash", "asset", "125000.00"),
    ("1100", "Accounts Receivable", "asset", "48250.00"),
    ("2000", "Accounts Payable", "liability", "17300.00"),
    ("3000", "Owner's Equity", "equity", "100000.00"),
    ("4000", "Sales Revenue", "revenue", "212400.00"),
    ("5000", "Operating Expenses", "expense", "61850.00"),
]
# (status, due date, lines as (description, quantity, unit price))
_INVOICES = [
    ("paid", "2025-01-31", [("Implementation services", "40", "150.00"), ("Annual licence", "1", "12000.00")]),
    ("sent", "2025-03-15", [("Support plan, quarterly", "1", "2400.00")]),
    ("overdue", "2025-02-28", [("Training day", "2", "1800.00"), ("Travel expenses", "1", "640.50")]),
    ("draft", "2025-04-30", [("Consulting", "12.5", "180.00")]),
    ("paid", "2025-02-15", [("Hardware bundle", "3", "899.99")]),
]


def _usd(amount: str | Decimal) -> Money:
    return Money(currency="USD", amount=str(amount))


def seed(auth: AuthState, *, crm: Store, hrm: Store, finance: Store) -> None:
    for (org_name, domain), people in _PEOPLE.items():
        org = auth.create_organization(org_name, domain).id
        users = {
            role: auth.create_user(org, f"{role.replace('_', '-')}@{domain}", DEMO_PASSWORD,
                                   first_name=first, last_name=last, roles=(role,))
            for role, first, last, *_ in people
        }
        owner = users.get("sales_manager", users["admin"]).id
        customers = _seed_crm(crm, org, _CUSTOMERS[(org_name, domain)], owner)
        _seed_hrm(hrm, org, people, users)
        _seed_finance(finance, org, domain, customers)


def _seed_crm(crm: Store, org: str, customers: list, owner_id: str) -> list[str]:
    ids = []
    for i, (name, domain, phone, status, contacts) in enumerate(customers):
        customer = crm.create("Customer", org, crm_pb2.Customer(
            name=name, email=f"info@{domain}", phone=phone, status=status, owner_id=owner_id))
        ids.append(customer.id)
        for person in contacts:
            local = person.lower().replace(" ", ".")
            crm.create("Contact", org, crm_pb2.Contact(
                customer_id=customer.id, name=person, email=f"{local}@{domain}", phone=phone))
        crm.create("Deal", org, crm_pb2.Deal(
            customer_id=customer.id, title=f"{name}: {('platform rollout', 'support renewal')[i % 2]}",
            amount=_usd(Decimal(15000 + 7500 * i)), stage=_DEAL_STAGES[i % len(_DEAL_STAGES)]))
    return ids


def _seed_hrm(hrm: Store, org: str, people: list, users: dict) -> None:
    departments = {name: hrm.create("Department", org, hrm_pb2.Department(name=name)).id
                   for name in dict.fromkeys(dept for *_, dept, _title in people)}
    employees: dict[str, str] = {}  # role -> employee id
    for role, first, last, dept, title in people:  # the first person of an org manages the rest
        user = users[role]
        employees[role] = hrm.create("Employee", org, hrm_pb2.Employee(
            user_id=user.id, first_name=first, last_name=last, email=user.email,
            department_id=departments[dept], title=title,
            manager_id=next(iter(employees.values()), ""))).id
    for role, *_, dept, _title in people:  # heads: the first person seeded in each department
        department = hrm.get("Department", org, departments[dept])
        if not department.head_id:
            hrm.update("Department", org, hrm_pb2.Department(id=department.id, head_id=employees[role]))


def _seed_finance(finance: Store, org: str, domain: str, customers: list[str]) -> None:
    for code, name, kind, balance in _ACCOUNTS:
        finance.create("Account", org, finance_pb2.Account(
            code=code, name=name, type=kind, balance=_usd(balance)))
    prefix = domain.split(".")[0].upper()
    for i, (status, due, lines) in enumerate(_INVOICES):
        invoice = finance.create("Invoice", org, finance_pb2.Invoice(
            customer_id=customers[i], number=f"{prefix}-2025-{i + 1:04d}", status=status, due_date=due,
            lines=[finance_pb2.InvoiceLine(description=d, quantity=q, unit_price=_usd(p))
                   for d, q, p in lines]))
        if status == "paid":
            finance.create("Payment", org, finance_pb2.Payment(invoice_id=invoice.id, amount=invoice.total))
