"""Harnesses for tests and benchmarks; production code never imports this package (import-linter).

- ``simulation``: Monte Carlo rollouts through the real planner and judge.
"""
