"""CEL as a Kubernetes API server evaluates it: the libraries, the runtime and the cost estimate."""
