"""A minimal kopf operator for the peering test (a test double: run as a script).

    python peering_operator.py --apiserver URL --peering NAME --priority N --identity ID

Cluster-wide, with peering mandatory and a short lifetime; its one handler stamps
``rankops.test/acted-by: ID`` on ConfigMaps labelled ``rankops.test/peering=yes``. It stands
for the operator in what kopf itself does: peering records, pausing, resuming.
"""

from __future__ import annotations

import argparse
from typing import Any

import kopf

registry = kopf.OperatorRegistry()
ARGS = argparse.Namespace()


@kopf.on.login(registry=registry)
def login(**_: Any) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=ARGS.apiserver, insecure=True)


@kopf.on.startup(registry=registry)
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.peering.mandatory = True
    settings.peering.lifetime = ARGS.lifetime
    settings.watching.server_timeout = 10
    settings.posting.enabled = False


@kopf.on.create("configmaps", labels={"rankops.test/peering": "yes"}, registry=registry)
def stamp(patch: kopf.Patch, **_: Any) -> None:
    patch.metadata.setdefault("annotations", {})["rankops.test/acted-by"] = ARGS.identity


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--apiserver", required=True)
    parser.add_argument("--peering", required=True)
    parser.add_argument("--priority", type=int, required=True)
    parser.add_argument("--identity", required=True)
    parser.add_argument("--lifetime", type=int, default=5)
    parser.parse_args(namespace=ARGS)
    kopf.configure(verbose=True)
    kopf.run(
        registry=registry,
        clusterwide=True,
        standalone=False,
        peering_name=ARGS.peering,
        priority=ARGS.priority,
    )


if __name__ == "__main__":
    main()
