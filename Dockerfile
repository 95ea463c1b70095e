FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY resolvers ./resolvers
COPY connectors ./connectors
COPY dashboards ./dashboards
RUN pip install --no-cache-dir .
EXPOSE 8000
CMD ["opsgraph", "serve", "--host", "0.0.0.0", "--port", "8000"]
