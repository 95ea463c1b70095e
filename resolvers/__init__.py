"""GraphQL types and resolvers, one module per domain. Resolvers never speak HTTP or SQL:
they ask the gateway's services and per-request loaders found on ``info.context``."""
