// GraphiQL from local files, with the dashboard's API key in its headers and subscriptions over our
// vendored graphql-ws (graphql-transport-ws) client.
import { createClient } from "./vendor/graphql-ws/client.js";
import { storedKey } from "./session.js";

const key = storedKey();
const authorization = key ? `Bearer ${key}` : null;
const url = new URL("/graphql", location.href);
const wsUrl = url.href.replace(/^http/, "ws");

const wsClient = createClient({
  url: wsUrl,
  // Subscriptions authenticate in connection_init with the dashboard's key (GraphiQL's headers pane
  // applies to HTTP requests only).
  connectionParams: () => (authorization ? { authorization } : {}),
  retryAttempts: 3,
});

const fetcher = GraphiQL.createFetcher({ url: url.href, wsClient });
const DEFAULT_QUERY = `# ptw's GraphQL API. Requests need the header
#   {"Authorization": "Bearer <key>"}
# (pre-filled below once you have signed in to the dashboard).
{
  viewer {
    name
    projects { id name role }
  }
  workflows { edges { node { id name builtin } } }
}
`;

const root = ReactDOM.createRoot(document.getElementById("graphiql"));
root.render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: DEFAULT_QUERY,
    defaultEditorToolsVisibility: authorization ? "headers" : true,
    headers: authorization ? JSON.stringify({ Authorization: authorization }, null, 2) : undefined,
  }),
);
