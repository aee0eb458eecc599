"""One controller per resource: read the object, gather observations through the adapters, call
the core once, apply children, status and Events.

- ``rankingmodel``: ``RankingModelController`` (rollouts judged on NDCG@3).
"""
