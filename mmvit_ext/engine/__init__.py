"""What our tools add to mmengine: safe and strict checkpoint loading, atomic checkpoint saving, CPU launchers."""
from .hooks import AtomicCheckpointHook
from .launch import (adapt_launcher_to_device, add_checkpoint_args, add_trust_argument, checkpoint_errors_as_messages,
                     distributed_teardown, drop_pretrained, explain_errors, load_config, use_atomic_checkpoints,
                     work_dir_for)
from .runner import GuardedRunner, ResumeError, build_runner, install_checkpoint_loader

__all__ = [
    'AtomicCheckpointHook', 'GuardedRunner', 'ResumeError', 'adapt_launcher_to_device', 'add_checkpoint_args',
    'add_trust_argument', 'build_runner', 'checkpoint_errors_as_messages', 'distributed_teardown', 'drop_pretrained',
    'explain_errors', 'install_checkpoint_loader', 'load_config', 'use_atomic_checkpoints', 'work_dir_for'
]
