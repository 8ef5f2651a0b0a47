/**
 * A typed client for the ERP API gateway.
 *
 * `schema.d.ts` is generated from the gateway's OpenAPI document (`npm run generate`), so every
 * path, parameter, body and answer is typed: `data` of a success and the error envelope of each
 * status. Calls go through openapi-fetch, a thin wrapper over `fetch`.
 */
import createClient, { type Client, type Middleware } from "openapi-fetch";

import type { components, paths } from "./schema.js";

export type { components, paths };
export type Schemas = components["schemas"];
export type User = Schemas["erp.auth.v1.User"];
export type TokenAnswer = Schemas["TokenAnswer"];
export type Customer = Schemas["erp.crm.v1.Customer"];
/** The error envelope; `code` is stable and machine-readable, `errors` is keyed by field. */
export type ApiError = Schemas["Error400"] | Schemas["Error401"] | Schemas["Error403"] | Schemas["Error404"]
  | Schemas["Error409"] | Schemas["Error413"] | Schemas["Error415"] | Schemas["Error429"] | Schemas["Error500"]
  | Schemas["Error502"] | Schemas["Error503"] | Schemas["Error504"];

/** Where the client keeps the tokens of the signed-in user (e.g. in memory in a SPA). */
export interface Session {
  accessToken?: string;
  refreshToken?: string;
}

export type GatewayClient = Client<paths>;

/** A client for the gateway at `baseUrl` that sends `session.accessToken` as a Bearer token. */
export function createGatewayClient(baseUrl: string, session: Session = {}, init: { fetch?: typeof fetch } = {}): GatewayClient {
  const client = createClient<paths>({ baseUrl, fetch: init.fetch });
  const bearer: Middleware = {
    onRequest({ request }) {
      if (session.accessToken && !request.headers.has("Authorization")) {
        request.headers.set("Authorization", `Bearer ${session.accessToken}`);
      }
      return request;
    },
  };
  client.use(bearer);
  return client;
}

/** Keep the token pair of a login, register or refresh answer. */
export function remember(session: Session, answer: TokenAnswer): void {
  session.accessToken = answer.access_token;
  session.refreshToken = answer.refresh_token;
}
