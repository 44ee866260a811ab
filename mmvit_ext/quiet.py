"""Lines our tools drop because they tell the user nothing to act on (used by tools/train.py and tools/test.py
only; importing mmvit_ext changes no warning or log filter).

mmengine prints "Loads checkpoint by <scheme> backend from path: ..." before every checkpoint it reads; the runner
logs the file again once it is loaded ("Load checkpoint from ...") and our backbones name it in their own messages.
(The tools also filter setuptools' "pkg_resources is deprecated" warning, raised twice at every start because
mmengine 0.10.7 and mmcv import ``pkg_resources``; that filter has to come before their first mmengine import, so
it is written in the tools themselves.)
"""
import mmengine.runner.checkpoint as mmengine_checkpoint

__all__ = ['drop_checkpoint_backend_lines']

_BACKEND_LINE = 'Loads checkpoint by '


def drop_checkpoint_backend_lines():
    """Make mmengine's checkpoint loader skip its "Loads checkpoint by ... backend" line (idempotent)."""
    print_log = mmengine_checkpoint.print_log
    if getattr(print_log, 'drops_backend_lines', False):
        return

    def print_log_without_backend_line(msg, *args, **kwargs):
        if not str(msg).startswith(_BACKEND_LINE):
            print_log(msg, *args, **kwargs)

    print_log_without_backend_line.drops_backend_lines = True
    mmengine_checkpoint.print_log = print_log_without_backend_line
