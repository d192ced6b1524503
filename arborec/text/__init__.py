"""Stage `text`: item text rendered, encoded by a pretrained language model, cached, fine-tuned on behaviour."""

from arborec.text._cache import VectorCache, text_key
from arborec.text._encoder import BACKENDS, DEFAULT_MODEL, TextEncoder, default_model_path
from arborec.text._items import encode_items
from arborec.text._render import ItemTextTemplate, render_items

_FINETUNE = ("AdapterConfig", "ResidualAdapter", "apply_adapter", "cooccurrence_pairs", "fit_adapter")


def __getattr__(name):
    # Fine-tuning needs torch; importing it lazily keeps `arborec encode` on a warm cache fast.
    if name in _FINETUNE:
        from arborec.text import _finetune

        return getattr(_finetune, name)
    raise AttributeError(f"module 'arborec.text' has no attribute {name!r}")


__all__ = ["TextEncoder", "ItemTextTemplate", "render_items", "VectorCache", "encode_items", "text_key",
           "default_model_path", "DEFAULT_MODEL", "BACKENDS", *_FINETUNE]
