"""nacscope: activation codes of ReLU networks, built around Neural Activation Coding (NAC)."""

__version__ = "0.1.0"

from nacscope.errors import NacscopeError  # noqa: E402

__all__ = ["NacscopeError", "__version__"]
