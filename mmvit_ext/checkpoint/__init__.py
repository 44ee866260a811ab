"""Official-checkpoint conversion: one module per family, used by ``init_weights`` and tools/model_converters."""
from .common import (CheckpointMismatchError, ConvertedState, extract_state_dict, load_converted,
                     read_checkpoint)

__all__ = ['CheckpointMismatchError', 'ConvertedState', 'extract_state_dict', 'load_converted', 'read_checkpoint']
