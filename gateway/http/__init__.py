"""The HTTP stage, before GraphQL: who may reach the gateway and how it answers them. One
middleware a file, outermost first as ``gateway.app`` stacks them:

- ``hosts``: the ``Host`` must be one the gateway serves (DNS rebinding), else 400
  ``HOST_NOT_ALLOWED``;
- CORS (Starlette's ``CORSMiddleware``) for the origins in settings;
- ``security_headers``: CSP, ``X-Content-Type-Options``, ``Referrer-Policy`` and
  ``frame-ancestors`` on every HTML page;
- ``websocket_origin``: a WebSocket handshake from a page on another origin is refused;
- ``rate_limit``: requests per principal, after authentication, else 429 ``RATE_LIMITED``.

``csrf`` (which GET may run an operation) and ``media`` (``application/graphql-response+json``
or ``application/json``) are decided by the GraphQL view; ``refusal`` is how each of them
answers: a GraphQL-shaped JSON error.
"""
