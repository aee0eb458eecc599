"""The ranking service, trainer, evaluator and model jobs."""
