// Proves opsgraph is a valid Apollo Federation v2 subgraph, with Apollo's own tools:
// 1. @apollo/composition composes our SDL (from `_service { sdl }`, @requiresScopes included)
//    with a second subgraph;
// 2. @apollo/gateway serves a query that crosses into opsgraph through `_entities`.
//    @apollo/gateway refuses a supergraph that links a security feature it cannot enforce
//    (it has no authorization; the GraphOS Router enforces @requiresScopes), so it gets our
//    SDL without @requiresScopes: opsgraph enforces its scopes itself, on the router's
//    credential. Prints one JSON line: {"composed": bool, "errors": [...], "result": {...}}.
// Usage: OPSGRAPH_AUTHORIZATION="Bearer ..." node federation.mjs <opsgraph /graphql URL>
// (the router's own credential for opsgraph, sent on every subgraph request)
import { composeServices } from "@apollo/composition";
import { ApolloGateway, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { buildSubgraphSchema } from "@apollo/subgraph";
import gql from "graphql-tag";
import { parse, visit } from "graphql";

const opsgraphUrl = process.argv[2];
const authorization = process.env.OPSGRAPH_AUTHORIZATION ?? "";

// A second subgraph a company might already run: survey scores keyed by customer id.
const surveyTypeDefs = gql`
  extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: ["@key"])
  type Customer @key(fields: "id") {
    id: ID!
    npsScore: Int
  }
  type Query {
    surveyedCustomers: [Customer!]!
  }
`;
const scores = JSON.parse(process.argv[3] ?? "{}");
const surveyResolvers = {
  Query: { surveyedCustomers: () => Object.keys(scores).map((id) => ({ id })) },
  Customer: {
    __resolveReference: ({ id }) => ({ id }),
    npsScore: ({ id }) => scores[id] ?? null,
  },
};

function withoutScopes(document) {
  return visit(document, {
    Directive: (node) => (node.name.value === "requiresScopes" ? null : undefined),
    StringValue: (node) => (node.value === "@requiresScopes" ? null : undefined),
  });
}

async function main() {
  const sdlResponse = await fetch(opsgraphUrl, {
    method: "POST",
    headers: { "content-type": "application/json", authorization },
    body: JSON.stringify({ query: "{ _service { sdl } }" }),
  });
  const sdl = (await sdlResponse.json()).data._service.sdl;
  const composition = composeServices([
    { name: "opsgraph", url: opsgraphUrl, typeDefs: parse(sdl) },
    { name: "surveys", url: "http://127.0.0.1:0/graphql", typeDefs: surveyTypeDefs },
  ]);
  const errors = (composition.errors ?? []).map((e) => e.message);
  if (errors.length) {
    console.log(JSON.stringify({ composed: false, errors, result: null }));
    return;
  }

  const surveys = new ApolloServer({
    schema: buildSubgraphSchema([{ typeDefs: surveyTypeDefs, resolvers: surveyResolvers }]),
  });
  const { url: surveysUrl } = await startStandaloneServer(surveys, {
    listen: { host: "127.0.0.1", port: 0 },
  });
  const served = composeServices([
    { name: "opsgraph", url: opsgraphUrl, typeDefs: withoutScopes(parse(sdl)) },
    { name: "surveys", url: surveysUrl, typeDefs: surveyTypeDefs },
  ]);
  const gateway = new ApolloGateway({
    buildService: ({ url }) =>
      new RemoteGraphQLDataSource({
        url,
        willSendRequest({ request }) {
          if (url === opsgraphUrl) request.http.headers.set("authorization", authorization);
        },
      }),
    supergraphSdl: served.supergraphSdl,
  });
  const router = new ApolloServer({ gateway });
  const { url: routerUrl } = await startStandaloneServer(router, {
    listen: { host: "127.0.0.1", port: 0 },
  });
  try {
    const answer = await fetch(routerUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        query: `{ surveyedCustomers { id npsScore name externalIds { system id }
                  account { name strategic } } }`,
      }),
    });
    console.log(JSON.stringify({ composed: true, errors: [], result: await answer.json() }));
  } finally {
    await router.stop();
    await surveys.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
