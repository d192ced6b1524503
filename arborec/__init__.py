"""arborec: hierarchical, language-model-grounded user-interest representations for recommendation."""

__version__ = "0.4.0"

__all__ = ["__version__"]
