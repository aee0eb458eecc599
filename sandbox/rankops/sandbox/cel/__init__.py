"""CEL as a Kubernetes API server evaluates it, for the sandbox API server.

- :mod:`.runtime`: compile (function names, constant regexes) and evaluate on cel-python,
  values typed by their schema;
- the Kubernetes libraries: :mod:`.lists`, :mod:`.strings`, :mod:`.regex`, :mod:`.urls`,
  :mod:`.quantity`, and :mod:`.numbers` (cross-type numeric comparison);
- the CRD-time cost limits: :mod:`.decltypes` (schema types and size bounds), :mod:`.cost`
  (the estimate of one rule), :mod:`.budget` (per-rule and per-schema limits).
"""
