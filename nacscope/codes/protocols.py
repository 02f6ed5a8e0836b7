"""Re-export of :mod:`nacscope.data.protocols` (query/gallery protocols live with the data they split)."""

from nacscope.data.protocols import *  # noqa: F401,F403
from nacscope.data.protocols import __all__  # noqa: F401
