"""I/O adapters of the operator shell, each behind a small protocol.

- :mod:`.prometheus`: ``MetricsSource`` over the Prometheus HTTP API.
- :mod:`.kube`: credentials (``connection_info``), a minimal async Kubernetes API client, the
  idempotent children applier, Deployment readiness and Events.
"""
