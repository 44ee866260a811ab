"""Checkpoint reading (safe by default, ``safety.py``) and official-checkpoint conversion: one module per family,
used by ``init_weights`` and tools/model_converters."""
from .common import (CheckpointMismatchError, ConvertedState, extract_state_dict, load_converted,
                     read_checkpoint)
from .safety import (CheckpointNotFoundError, NotACheckpointError, UnsafeCheckpointError, load_checkpoint_file,
                     register_safe_globals, safe_globals, trust_checkpoints)

__all__ = [
    'CheckpointMismatchError', 'ConvertedState', 'extract_state_dict', 'load_converted', 'read_checkpoint',
    'CheckpointNotFoundError', 'NotACheckpointError', 'UnsafeCheckpointError', 'load_checkpoint_file',
    'register_safe_globals', 'safe_globals', 'trust_checkpoints'
]
