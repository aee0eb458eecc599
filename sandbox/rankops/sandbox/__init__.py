"""Local stand-ins for what cannot run here: the Kubernetes API server emulator."""
