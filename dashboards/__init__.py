"""The web dashboards the gateway serves at ``/dashboards`` (customer 360, support console,
approvals, reconciliation board, operations): plain ES modules in ``static/`` that are
GraphQL clients of ``/graphql`` through the persisted operations in ``operations/``, and the
pinned front-end packages of ``package.json`` (``npm ci --prefix dashboards``). ``web``
routes them."""
