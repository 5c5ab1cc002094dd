"""gc.nn: the neural-network ops."""
from .ops.nn import *  # noqa: F401,F403
from .ops.volumetric import *  # noqa: F401,F403
