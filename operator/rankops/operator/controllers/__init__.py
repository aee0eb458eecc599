"""One module per resource: read the object, gather observations through adapters, call the
core, apply children / status / Events. ``alerts`` is the Alertmanager receiver."""
