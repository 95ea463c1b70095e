"""Who is asking: principals (people with bearer JWTs, services with API keys), the roles
they hold and the scopes those grant, and the legal entities they may see. The server stage
authenticates every request before the GraphQL stage runs; the schema says which scopes
each field needs."""
