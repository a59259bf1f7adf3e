"""Pure-PyTorch math behind the ``reference`` backend of each mixer (no CUDA needed), and our own
Triton ops (decode_attention, qkv_rope, swiglu, fused_chunk_gla), each with its PyTorch twin
in the same file (fused_chunk_gla's is gla.chunk_gla)."""
