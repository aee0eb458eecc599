"""Conformance of the sandbox API server (rankops.sandbox.apiserver) with a real one."""
