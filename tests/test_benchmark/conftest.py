import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: the tiny timed runs here are dominated by thread wake-ups, and a busy machine makes
    spinning OpenMP threads very slow. Restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
