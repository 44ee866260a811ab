"""Helpers for testing backbones and configs against the mmvit_ext contract."""
from .backbone_checks import (check_autocast, check_batch_independence, check_frozen_stages,
                              check_gradients_reach_all, check_norm_eval, check_output_shapes, check_with_cp,
                              count_params, random_state_dict)
from .config_checks import repoint_demo_data, run_config_smoke

__all__ = ['check_autocast', 'check_batch_independence', 'check_frozen_stages', 'check_gradients_reach_all',
           'check_norm_eval', 'check_output_shapes', 'check_with_cp', 'count_params', 'random_state_dict',
           'repoint_demo_data', 'run_config_smoke']
