# The dashboards' front-end packages, pinned by their lockfile, installed where the gateway
# serves them from (dashboards/web.py names the files it serves).
FROM node:20-slim AS assets
WORKDIR /assets
COPY dashboards/package.json dashboards/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY resolvers ./resolvers
COPY connectors ./connectors
COPY dashboards ./dashboards
COPY --from=assets /assets/node_modules ./dashboards/node_modules
# The persisted query manifest is built into the installed package (from /, so that the
# installed one is imported), then a user of its own runs everything.
RUN pip install --no-cache-dir . \
    && cd / && python -m gateway.persisted.manifest \
    && useradd --system --uid 10001 --user-group --create-home --home-dir /var/lib/opsgraph opsgraph
USER opsgraph
# Relative state (a demo's or the sandboxes' .opsgraph/) is the user's own.
WORKDIR /var/lib/opsgraph
EXPOSE 8000
# Listens where OPSGRAPH_HOST and OPSGRAPH_PORT say (127.0.0.1:8000 by default);
# docker-compose.yml opens the replicas with OPSGRAPH_HOST=0.0.0.0.
CMD ["opsgraph", "serve"]
