"""Structural-schema handling of custom resources, as kube-apiserver does it for CRDs.

Pure functions, no I/O, no server: other code and tests call them directly. The parts:
:mod:`~rankops.sandbox.field_errors` (the errors), :mod:`~rankops.sandbox.crd_checks` (CRDs and
names), :mod:`~rankops.sandbox.schema_walker` (prune, default, composition, CEL) and
:mod:`~rankops.sandbox.schema_values` (the OpenAPI value validations).

``validate_custom_resource(crd, obj, old=None)`` returns the object pruned and defaulted
as the API server would store it, plus the list of :class:`FieldError` the server would
answer with (422 Invalid). The order follows the API server: unknown fields are pruned,
``default`` values applied, then the value validations of OpenAPI v3 (type, enum, pattern,
bounds, lengths, required, nullable, formats, ``x-kubernetes-int-or-string``,
``x-kubernetes-preserve-unknown-fields``) and the ``x-kubernetes-validations`` CEL rules
(:mod:`rankops.sandbox.cel`: cel-python with the Kubernetes libraries, ``self`` bound to the
node, ``oldSelf`` to the prior value for transition rules). ``validate_crd`` compiles every
rule and applies the server's estimated cost limits (per rule and per schema), refusing the
CRD with the server's messages.

CEL as a real server runs it: the lists library, the strings extension, regex ``find``/
``findAll``, ``url()``, ``quantity()``, cross-type numeric comparison, values typed by the
schema (``number`` is a double, ``date-time`` a timestamp, ``duration`` a duration), the
error texts of failed rules (the schema type as the value) and of erroring rules
("... evaluating rule: ..."). Unknown functions, undefined fields, member functions called
on a receiver of the wrong known type, rules of a known non-bool type, constant regexes
RE2 refuses and syntax errors refuse the CRD at creation, as on a real server.

Deliberate differences from a real API server (kept small and named):
- CEL type checking: no full static type checker; field selection, function names, the
  receiver kinds of member functions and the result kind are checked where the type is
  known. Other type errors a real server refuses at CRD creation (``'a' + 1``, a list of
  ints to ``join()``, arguments of the wrong type) show up here only when the rule runs,
  as a 422 "no such overload" on the object.
- CEL libraries not provided: ``format``, ``strings.quote``, ``reverse``, sets, ``ip``/
  ``cidr``, ``semver``, ``lists.range``/``sort``/``flatten``/``slice``, optionals
  (``?.``, ``orValue``), ``cel.bind``, the math extension, two-variable comprehensions,
  authorizer. A rule using them is refused at CRD creation ("undeclared reference") where a
  server of a recent version accepts it.
- CEL cost: the estimate follows cel-go's ``checker.Cost`` and the Kubernetes library
  estimator, with the schema's bounds and cardinalities, and reproduces the server's figures
  where we could check them (``all(x, x.contains(...))`` over bounded strings). It is an
  approximation where cel-python's parse tree lacks the checker's types: an expression of
  unknown type has an unknown (maximal) size, so a rule can cost more here than on a
  server. Only the maximum is tracked. The runtime budgets (per call and per validation)
  are not enforced: a rule runs to completion.
- Equality of opaque values (``quantity(a) == quantity(b)``) has an unbounded estimated
  cost, cel-go's default for types without a size (a server overrides this for IP/CIDR).
- A rule refused at CRD creation shows the rule's text as the value; the server prints the
  Go struct of the rule (``apiextensions.ValidationRule{Rule:...}``).
- Runtime error texts follow cel-go for the library functions; errors cel-python raises
  itself (integer overflow, division by zero, missing keys) keep cel-python's wording.
- Validation ratcheting (errors on unchanged fields of an update become warnings) is not
  implemented: every rule of every node is enforced on update.
- ``oldSelf`` is correlated through object properties and ``additionalProperties`` keys,
  and through ``x-kubernetes-list-type: map`` lists by their keys; not through other lists.
  A rule is a transition rule when its text names ``oldSelf``; ``optionalOldSelf`` is not
  supported.
- Formats checked: ``date-time``, ``date``, ``int32``, ``int64``, ``uri``, ``email``,
  ``hostname``, ``ipv4``, ``uuid``, ``byte``, ``duration``; others are accepted.
- Regular expressions (``pattern``, CEL ``matches``/``find``/``findAll``) use RE2 through
  google-re2, where the server uses Go's regexp (also RE2 syntax; corner cases may differ).
  A ``pattern`` RE2 refuses is not checked (the server refuses such a CRD).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from rankops.sandbox.crd_checks import crd_version, validate_crd, validate_object_name
from rankops.sandbox.field_errors import FieldError, format_value
from rankops.sandbox.schema_walker import SchemaWalker

__all__ = [
    "FieldError",
    "crd_version",
    "format_value",
    "validate_crd",
    "validate_custom_resource",
    "validate_object_name",
]


def validate_custom_resource(
    crd: Mapping[str, Any],
    obj: Mapping[str, Any],
    old: Mapping[str, Any] | None = None,
    *,
    unknown_fields: list[str] | None = None,
) -> tuple[dict[str, Any], list[FieldError]]:
    """Prune, default and validate a custom resource against its CRD.

    ``crd`` is the CustomResourceDefinition (apiextensions.k8s.io/v1) as a dict; ``obj`` the
    custom resource; ``old`` its stored state on update (binds ``oldSelf`` in transition
    rules). Returns ``(object, errors)``: a new dict, pruned and defaulted, and the errors
    (empty when valid). ``obj`` is not modified. Pass a list as ``unknown_fields`` to get
    the paths of the fields that were pruned (what ``fieldValidation=Strict`` rejects).
    """
    result = copy.deepcopy(dict(obj))
    errors: list[FieldError] = []
    spec = crd.get("spec") or {}
    group = spec.get("group", "")
    api_version = result.get("apiVersion")
    version_name: str | None = None
    if isinstance(api_version, str) and "/" in api_version:
        obj_group, version_name = api_version.rsplit("/", 1)
        if obj_group != group:
            errors.append(FieldError("apiVersion", f"must be {group}/<version>", value=api_version))
    try:
        version = crd_version(crd, version_name)
    except KeyError:
        errors.append(
            FieldError(
                "apiVersion",
                "version not served by the CustomResourceDefinition",
                reason="FieldValueNotSupported",
                value=api_version,
            )
        )
        return result, errors
    kind = (spec.get("names") or {}).get("kind")
    if kind and result.get("kind") not in (None, kind):
        errors.append(FieldError("kind", f"must be {kind}", value=result.get("kind")))

    metadata = result.get("metadata") or {}
    if not isinstance(metadata, Mapping):
        errors.append(FieldError("metadata", "must be of type object", value=metadata))
    elif metadata.get("name") or not metadata.get("generateName"):
        errors += validate_object_name(metadata.get("name"))

    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    if not isinstance(schema, Mapping):
        return result, errors  # a CRD without a schema preserves everything (not possible in v1)

    walker = SchemaWalker(errors, unknown_fields)
    # The root object: apiVersion/kind/metadata are the server's business, never pruned here.
    root_schema = dict(schema)
    root_schema.setdefault("type", "object")
    result = walker.walk(result, root_schema, "", old, root=True)
    return result, errors
