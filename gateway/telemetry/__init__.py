"""What the gateway tells about itself: Prometheus metrics (``metrics``), OpenTelemetry
traces (``tracing``) and the log's lines (``log_format``)."""
