"""Pure decisions: no I/O, no kopf, no Kubernetes client, no clock reads."""
