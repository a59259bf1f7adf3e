"""Pure-PyTorch math behind the ``reference`` backend of each mixer (no CUDA needed), and our own
Triton ops (decode_attention, qkv_rope, swiglu), each with its PyTorch twin in the same file."""
