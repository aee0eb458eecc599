"""Pure decisions: no I/O, no kopf, no Kubernetes client, no clock reads (``now`` is a parameter).

Modules (each documents its public API in its docstring), top layer first (import-linter
``layers`` contract in pyproject.toml: a module imports only from the layers below it):

- ``rollout``: the RankingModel planner: ``analysis_due``, ``plan_rollout`` -> ``Plan``,
  ``RolloutState``; ``slo``: QualitySLO objective state (``objective_state``).
- ``children``: ``build_children(meta, spec, state)``, ``track_replicas``; ``judge``:
  ``judge(objectives, data, ...) -> Verdict``; ``promql``: ``objective_queries``; ``routing``:
  ``replica_split``, ``gateway_split``, ``route_weights``, ``desired_replicas``.
- ``spec``: typed specs of the three resources, ``SpecError``; ``verdict``: ``TrackSummary``,
  ``ObjectiveData``, ``Verdict`` (the judge's data); ``conditions``: ``set_condition`` /
  ``get_condition`` (Kubernetes conventions); ``events``: ``Event``.
- ``counters``: exact window increases from raw samples; ``diff``: ``needs_update`` (the no-write
  diff, quantities by value); ``timeutil``: durations and timestamps.
"""
