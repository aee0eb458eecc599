"""The rankops operator run peered, for the HA test until `rankops operator run --peering` exists.

    RANKOPS_PEERING=rankops python ha_operator.py

The operator's own handlers (``rankops.operator.handlers.registry``) and kopf.run as
``rankops operator run --all-namespaces`` calls it; the only addition is the wiring that
``rankops.operator.peering`` documents: a startup handler registered after the operator's
own (which forces standalone today) applies ``PeeringConfig``, and kopf.run gets the
peering name and priority.
"""

from __future__ import annotations

from typing import Any

import kopf

from rankops.operator.handlers import registry
from rankops.operator.peering import PeeringConfig
from rankops.operator.settings import OperatorConfig


def main() -> None:
    peering = PeeringConfig.from_env()
    if peering is None:
        raise SystemExit("set RANKOPS_PEERING")
    OperatorConfig.from_env()

    @kopf.on.startup(registry=registry)
    def apply_peering(settings: kopf.OperatorSettings, **_: Any) -> None:
        peering.apply(settings)

    kopf.configure(verbose=False, log_prefix=True)
    kopf.run(
        registry=registry,
        standalone=False,
        clusterwide=True,
        peering_name=peering.name,
        priority=peering.priority,
    )


if __name__ == "__main__":
    main()
