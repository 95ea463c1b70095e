"""Abuse limits: what one request may ask of the gateway, and one principal per time window.

Every refusal is cheap and happens before anything runs, in the stage that first knows
enough to decide:

  stage                                  limit                       code
  request scope, reading the body        body size                   REQUEST_TOO_LARGE (413)
  after authentication (HTTP)            requests per principal      RATE_LIMITED (429)
  parsing                                tokens                      TOKEN_LIMIT
  after parsing, before validation       aliases, directives, field  ALIAS_LIMIT, DIRECTIVE_LIMIT,
    (``document``, ``cost``)               repeats, depth, _entities   DUPLICATE_FIELD_LIMIT,
                                           representations, cost       DEPTH_LIMIT, ENTITIES_LIMIT,
                                                                       COST_LIMIT
  before execution                       cost per principal          RATE_LIMITED (429)

The per-principal windows (``windows``) are kept by the ``limits`` library: in Redis when
it is configured, so that replicas share them, in process otherwise and while Redis is down.
"""
