// The public GraphQL API: queries over HTTP, usageRecorded over graphql-transport-ws.

import { createClient, type Client } from "graphql-ws";

export interface GraphQLErrorBody {
  message: string;
  extensions?: { code?: string; [key: string]: unknown };
}

/** A GraphQL error, with the code from `extensions.code`. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

const KEY_STORAGE = "cortiUsageKey";

/** The API key of this browser tab (sessionStorage: gone when the tab closes). */
export const apiKey = {
  get(): string | null {
    return sessionStorage.getItem(KEY_STORAGE);
  },
  set(key: string): void {
    sessionStorage.setItem(KEY_STORAGE, key);
  },
  clear(): void {
    sessionStorage.removeItem(KEY_STORAGE);
  },
};

export const endpoint = new URL("/graphql", window.location.href).toString();

/** Run a query; resolves to `data`, rejects with ApiError. */
export async function query<T>(
  key: string,
  document: string,
  variables: Record<string, unknown> = {},
): Promise<T> {
  let response: Response;
  try {
    response = await fetch(endpoint, {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${key}`,
      },
      body: JSON.stringify({ query: document, variables }),
    });
  } catch {
    throw new ApiError("the service cannot be reached", "NETWORK");
  }
  let body: { data?: T; errors?: GraphQLErrorBody[] };
  try {
    body = await response.json();
  } catch {
    throw new ApiError(`unexpected answer (HTTP ${response.status})`, "INTERNAL");
  }
  if (body.errors?.length) {
    const [first] = body.errors;
    throw new ApiError(first.message, first.extensions?.code ?? "INTERNAL");
  }
  if (body.data === undefined) throw new ApiError("no data in the answer", "INTERNAL");
  return body.data;
}

export interface UsageEvent {
  id: string;
  source: string;
  externalId: string;
  credits: string;
  createdAt: string;
  interactionId: string;
}

export type LiveState = "connecting" | "live" | "offline" | "refused";

/** A graphql-transport-ws connection authenticated with the key. */
export function liveClient(key: string, onState: (state: LiveState) => void): Client {
  const url = new URL("/graphql", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return createClient({
    url: url.toString(),
    connectionParams: { Authorization: `Bearer ${key}` },
    lazy: false,
    keepAlive: 20_000,
    retryAttempts: Infinity,
    shouldRetry: (event) => !(isCloseEvent(event) && event.code === 4403),
    on: {
      connecting: () => onState("connecting"),
      connected: () => onState("live"),
      closed: (event) => onState(isCloseEvent(event) && event.code === 4403 ? "refused" : "offline"),
    },
  });
}

function isCloseEvent(value: unknown): value is CloseEvent {
  return typeof value === "object" && value !== null && "code" in value;
}

const USAGE_RECORDED = `
subscription UsageRecorded($tenantId: ID!) {
  usageRecorded(tenantId: $tenantId) {
    id source externalId credits createdAt interactionId
  }
}`;

/** Call `onEvent` for each usage record of the tenant; returns an unsubscribe function. */
export function subscribeUsage(
  client: Client,
  tenantId: string,
  onEvent: (event: UsageEvent) => void,
  onError: (error: ApiError) => void,
): () => void {
  return client.subscribe<{ usageRecorded: UsageEvent }>(
    { query: USAGE_RECORDED, variables: { tenantId } },
    {
      next: (result) => {
        if (result.errors?.length) {
          const [first] = result.errors;
          const code = (first.extensions?.code as string | undefined) ?? "INTERNAL";
          onError(new ApiError(first.message, code));
        } else if (result.data) {
          onEvent(result.data.usageRecorded);
        }
      },
      error: (error) => {
        if (Array.isArray(error) && error.length) {
          const first = error[0] as GraphQLErrorBody;
          onError(new ApiError(first.message, first.extensions?.code ?? "INTERNAL"));
        }
      },
      complete: () => undefined,
    },
  );
}
