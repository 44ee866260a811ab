from .lightvit import *  # noqa: F401,F403
from .lit import *  # noqa: F401,F403
from .litv2 import *  # noqa: F401,F403
from .lvt import *  # noqa: F401,F403
