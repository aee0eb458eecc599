"""One controller per resource: read the object, gather observations through the adapters, call
the core once, apply children, status and Events.

- ``rankingmodel``: ``RankingModelController`` (rollouts judged on NDCG@3).
- ``qualityslo``: ``QualitySLOController`` (the live quality watch: status, rollback after
  promotion, the remediation ladder); ``quality_runtime`` starts its receiver.
- ``alerts``: the Alertmanager receiver (``POST /v1/alerts``), waking the QualitySLO controller.
"""
