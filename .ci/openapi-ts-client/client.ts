// A typed client of modelreg: what a console or an SDK user writes against the types that
// openapi-typescript generates from the OpenAPI document. `.ci/openapi-ts` generates
// ./schema.d.ts and type-checks this file; it is never run. A document that turns one of these
// lines into a type error (a bare `{"type": "object"}` becomes `Record<string, never>`, which
// no value fits) fails CI.
import type { components, operations, paths } from "./schema";

type Schemas = components["schemas"];

/** True only when A and B are the same type; mere assignability would let `any` pass. */
type Equal<A, B> =
  (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function expectType<T extends true>(): T | void {}

// Create a model with credentials: POST /assets/models.
type CreateBody = paths["/assets/models"]["post"]["requestBody"]["content"]["application/json"];
export const create: CreateBody = {
  name: "GPT-4o",
  litellm_model: "openai/gpt-4o",
  credentials: { api_key: "sk-x" },
};
// Values other than strings are credentials too, as the API accepts them.
export const vertex: Schemas["ModelCreate"] = {
  name: "Gemini on Vertex",
  litellm_model: "vertex_ai/gemini-1.5-pro",
  credentials: {
    vertex_project: "my-project",
    vertex_credentials: { type: "service_account", client_email: "a@b.iam" },
    max_retries: 3,
  },
};
export const nullInCreate: CreateBody = {
  name: "n",
  litellm_model: "openai/gpt-4o",
  // @ts-expect-error a stored credential is never null (null only removes a key in a PATCH)
  credentials: { api_key: null },
};

// Replace the credentials whole: PUT or PATCH /assets/models/{resource_uri}.
export const update: Schemas["ModelUpdate"] = { credentials: { api_key: "sk-y" } };

// Change them key by key: PATCH /assets/models/{resource_uri}/credentials. null removes a key.
type CredentialsPatch =
  operations["patch_model_credentials"]["requestBody"]["content"]["application/json"];
export const rotate: CredentialsPatch = { api_key: "sk-z", organization: null };

// Read what an audit event changed.
export function describe(event: Schemas["AuditEventView"]): string[] {
  const lines: string[] = [];
  for (const [field, change] of Object.entries(event.changes)) {
    if (typeof change === "boolean") {
      lines.push(`${field}: ${change}`);
    } else if ("changed" in change) {
      lines.push(`${field} changed`);
    } else {
      lines.push(`${field}: ${JSON.stringify(change.from)} -> ${JSON.stringify(change.to)}`);
    }
  }
  return lines;
}

// The LiteLLM export's config and the OpenAPI document are JSON objects to read key by key.
export function modelList(body: Schemas["LitellmExport"]): unknown[] {
  const list = body.config["model_list"];
  return Array.isArray(list) ? list : [];
}
expectType<Equal<Schemas["LitellmExport"]["config"][string], unknown>>();
type OpenApiDocument = operations["openapi"]["responses"][200]["content"]["application/json"];
expectType<Equal<OpenApiDocument[string], unknown>>();

// A 429 says when to retry, in seconds.
expectType<Equal<operations["create_model"]["responses"][429]["headers"]["Retry-After"], number>>();
expectType<
  Equal<operations["openai_list_models"]["responses"][429]["headers"]["Retry-After"], number>
>();
export function retryAfterMs(
  headers: operations["list_models"]["responses"][429]["headers"],
): number {
  return headers["Retry-After"] * 1000;
}

// OpenAI's retrieve: GET /v1/models/{id}.
type Retrieved =
  operations["openai_retrieve_model"]["responses"][200]["content"]["application/json"];
expectType<Equal<Retrieved, Schemas["OpenAiModel"]>>();
