/**
 * A frontend's journey through the gateway with the typed client, run by the test suite:
 *   node dist/examples/journey.js http://127.0.0.1:8080 admin@acme.example demo-pass-123
 * Prints one JSON line per step; exits non-zero at the first unexpected answer.
 */
import { createGatewayClient, remember, type Customer, type Session, type User } from "../src/index.js";

const [baseUrl = "http://127.0.0.1:8080", email = "admin@acme.example", password = "demo-pass-123"] = process.argv.slice(2);
const session: Session = {};
const api = createGatewayClient(baseUrl, session);

function step(name: string, detail: Record<string, unknown>): void {
  console.log(JSON.stringify({ step: name, ...detail }));
}

function fail(name: string, error: unknown): never {
  console.error(JSON.stringify({ step: name, failed: error }));
  process.exit(1);
}

// Sign in: `data` is a TokenAnswer, typed from the document.
const login = await api.POST("/api/v1/auth/login", { body: { email, password } });
if (!login.data) fail("login", login.error);
remember(session, login.data.data);
step("login", { status: login.response.status, token_type: login.data.data.token_type });

// The profile.
const me = await api.GET("/api/v1/auth/me");
if (!me.data) fail("me", me.error);
const user: User = me.data.data;
// @ts-expect-error: a User has no salary; the types are exact, not `any`.
void user.salary;
step("me", { status: me.response.status, email: user.email, roles: user.roles });

// Customers: list, create, update, delete.
const list = await api.GET("/api/v1/crm/customers", { params: { query: { page_size: 5, status: "active" } } });
if (!list.data) fail("list", list.error);
step("list", { status: list.response.status, items: list.data.data.items.length, total: list.data.data.total_size });

const create = await api.POST("/api/v1/crm/customers", { body: { name: "Typed Client Ltd", status: "lead" } });
if (!create.data) fail("create", create.error);
const customer: Customer = create.data.data;
step("create", { status: create.response.status, id: customer.id, location: create.response.headers.get("Location") });

const update = await api.PATCH("/api/v1/crm/customers/{id}", {
  params: { path: { id: customer.id } },
  body: { status: "active" },
});
if (!update.data) fail("update", update.error);
step("update", { status: update.response.status, customer_status: update.data.data.status });

const removed = await api.DELETE("/api/v1/crm/customers/{id}", { params: { path: { id: customer.id } } });
if (!removed.data) fail("delete", removed.error);
const nothing: null = removed.data.data;
step("delete", { status: removed.response.status, data: nothing });

// Refresh: a new pair; the old refresh token is spent.
const refresh = await api.POST("/api/v1/auth/refresh", { body: { refresh_token: session.refreshToken ?? "" } });
if (!refresh.data) fail("refresh", refresh.error);
const previous = session.accessToken;
remember(session, refresh.data.data);
step("refresh", { status: refresh.response.status, new_access_token: session.accessToken !== previous });

// Sign out, then the same token is refused everywhere.
const logout = await api.POST("/api/v1/auth/logout", { body: {} });
if (!logout.data) fail("logout", logout.error);
step("logout", { status: logout.response.status, data: logout.data.data });

const after = await api.GET("/api/v1/auth/me");
if (after.data || !after.error) fail("after-logout", "the profile answered after logout");
step("after-logout", { status: after.response.status, code: after.error.code });
