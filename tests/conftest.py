import os.path as osp
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


@pytest.fixture
def repo_root():
    return ROOT


@pytest.fixture
def python():
    """The interpreter of this test session (the project's venv), for tools run as subprocesses."""
    return sys.executable
