// GraphiQL at /graphql, from the vendored UMD builds (no CDN). The key of the
// dashboard's tab (sessionStorage) fills the Authorization header; headers are
// never persisted to localStorage, and also travel as the WebSocket
// connection_init payload, so subscriptions work from here too.

/* eslint-disable @typescript-eslint/no-explicit-any */
declare const React: any;
declare const ReactDOM: any;
declare const GraphiQL: any;
declare const GraphiQLPluginExplorer: any;

const EXAMPLE = `# Credits of every tenant this key can see, and its top users.
# Live updates: replace this with (and record some usage)
#   subscription { usageRecorded(tenantId: "t1") { source externalId credits createdAt } }
query Overview {
  tenants(first: 10) {
    nodes {
      id
      credits { total stream transcript document records }
      users(first: 5) { nodes { id credits { total } } }
    }
  }
}
`;

const url = window.location.origin + window.location.pathname;
const socketUrl = url.replace(/^http/, "ws");
const key = sessionStorage.getItem("cortiUsageKey");
const headers = JSON.stringify(key ? { Authorization: `Bearer ${key}` } : { Authorization: "Bearer <your key>" }, null, 2);

const fetcher = GraphiQL.createFetcher({ url, subscriptionUrl: socketUrl });
const explorer = GraphiQLPluginExplorer.explorerPlugin();

ReactDOM.createRoot(document.getElementById("graphiql")).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: EXAMPLE,
    defaultHeaders: headers,
    headers,
    plugins: [explorer],
    defaultEditorToolsVisibility: key ? false : "headers",
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    inputValueDeprecation: true,
  }),
);
