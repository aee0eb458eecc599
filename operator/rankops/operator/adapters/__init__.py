"""I/O adapters of the operator shell, each behind a small protocol.

- :mod:`.prometheus`: ``MetricsSource`` over the Prometheus HTTP API.
- :mod:`.kube`: a minimal async Kubernetes API client and the idempotent children applier.
"""
