"use strict";(()=>{var a=`# Credits of every tenant this key can see, and its top users.
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
`,r=window.location.origin+window.location.pathname,s=r.replace(/^http/,"ws"),e=sessionStorage.getItem("cortiUsageKey"),t=JSON.stringify(e?{Authorization:`Bearer ${e}`}:{Authorization:"Bearer <your key>"},null,2),o=GraphiQL.createFetcher({url:r,subscriptionUrl:s}),i=GraphiQLPluginExplorer.explorerPlugin();ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(GraphiQL,{fetcher:o,defaultQuery:a,defaultHeaders:t,headers:t,plugins:[i],defaultEditorToolsVisibility:e?!1:"headers",isHeadersEditorEnabled:!0,shouldPersistHeaders:!1,inputValueDeprecation:!0}));})();
