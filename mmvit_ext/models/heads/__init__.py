"""Classification heads and classifiers that a family needs of its own (mmpretrain has the rest).

Heads that subclass mmpretrain's ``ClsHead`` are registered lazily: their module (and with it mmpretrain's model
zoo) is imported only when a config builds them, which keeps ``import mmvit_ext`` fast.
"""
from ...registry import register_lazy
from .lightvit_head import *  # noqa: F401,F403

register_lazy('LVTClassAttentionHead', 'mmvit_ext.models.heads.lvt_head:LVTClassAttentionHead', scopes=('mmpretrain', ))
