from .attention import *  # noqa: F401,F403
from .deform_conv import deform_conv2d
from .deformable_merging import BiasedDeformConv2d, DeformableTokenMerging
from .embed import PatchEmbed
from .ffn import *  # noqa: F401,F403
from .hilo import *  # noqa: F401,F403
from .lightvit_attention import *  # noqa: F401,F403
from .lvt_attention import *  # noqa: F401,F403
from .onednn import Linear, conv2d, linear, use_onednn
from .utils import nchw_to_nlc, nlc_to_nchw, pad_to_multiple, run_blocks, window_partition, window_reverse
