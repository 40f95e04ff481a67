"""Thread limits shared by the torch models: the DAGs run several models side by side, one core each."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def one_torch_thread():
    """Run the block with torch on one intra-op thread, then restore the previous setting."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
