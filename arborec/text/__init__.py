"""Stage `text`: item text rendered, encoded by a pretrained language model, cached, fine-tuned on behaviour."""

from arborec.text._cache import VectorCache, text_key
from arborec.text._encoder import BACKENDS, DEFAULT_MODEL, TextEncoder, default_model_path
from arborec.text._finetune import AdapterConfig, ResidualAdapter, apply_adapter, cooccurrence_pairs, fit_adapter
from arborec.text._items import encode_items
from arborec.text._render import ItemTextTemplate

__all__ = ["TextEncoder", "ItemTextTemplate", "VectorCache", "encode_items", "fit_adapter", "apply_adapter",
           "AdapterConfig", "ResidualAdapter", "cooccurrence_pairs", "text_key", "default_model_path",
           "DEFAULT_MODEL", "BACKENDS"]
