"""Pure-PyTorch math behind the ``reference`` backend of each mixer (no CUDA needed)."""
