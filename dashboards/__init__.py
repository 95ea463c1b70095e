"""The web dashboards served by the gateway (customer 360, support console, approvals,
reconciliation board, operations). None are served yet."""
