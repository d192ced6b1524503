"""Item text rendered from catalog fields by a per-dataset template."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from arborec.diagnostics import logger


@dataclass
class ItemTextTemplate:
    """Which catalog fields make an item's text, in what order, and how long it may be.

    The text reads like ``"Avalon Biotin Conditioner. Brand: Avalon. Category: Hair Care > Conditioners.
    Description: ..."``; empty fields are skipped. ``max_chars`` cuts at a word boundary (the encoder
    truncates again at ``max_tokens``).
    """

    fields: tuple[str, ...] = ("title", "brand", "category_path", "genres", "tags", "year", "description")
    labels: tuple[tuple[str, str], ...] = (("brand", "Brand"), ("category_path", "Category"), ("genres", "Genres"),
                                           ("tags", "Tags"), ("year", "Year"), ("description", "Description"))
    drop_root_category: bool = True  # "Beauty > Skin Care" -> "Skin Care" when every path shares the root
    max_field_chars: int = 300  # per field (descriptions can be pages long)
    max_chars: int = 600

    def render(self, catalog: pd.DataFrame) -> list[str]:
        """One text per catalog row, in row order."""
        labels = dict(self.labels)
        paths = catalog["category_path"] if "category_path" in catalog.columns else None
        skip_root = bool(self.drop_root_category and paths is not None and _shared_root(paths))
        columns = {f: catalog[f].tolist() for f in self.fields if f in catalog.columns}
        texts = []
        for i in range(len(catalog)):
            parts = []
            for field, values in columns.items():
                value = values[i]
                if field == "category_path":
                    value = " > ".join(list(value)[1:] if skip_root else list(value)) if value is not None else ""
                text = _clean(value)
                if not text:
                    continue
                text = _cut(text, self.max_field_chars)
                parts.append(text if field == "title" or field not in labels else f"{labels[field]}: {text}")
            texts.append(_cut(". ".join(parts), self.max_chars))
        return texts


def render_items(catalog: pd.DataFrame, template: ItemTextTemplate | None = None) -> list[str]:
    """The text of every catalogue item (row order) that the encoders read: ``template.render(catalog)``.

    A catalogue without item text (:func:`arborec.data.has_item_text` is False, e.g. Amazon
    Sports, whose paths are anonymous attribute ids) gives empty texts, with a warning: no text
    is made up from its category or attribute paths, and the identical vectors of the empty
    texts say plainly that text has nothing to tell about these items.
    """
    from arborec.data import has_item_text

    if not has_item_text(catalog):
        logger.warning("the catalogue has no item text (title, brand, description... all empty): every item "
                       "gets the vector of the empty text")
        return [""] * len(catalog)
    return (template or ItemTextTemplate()).render(catalog)


def _shared_root(paths) -> bool:
    roots = {p[0] for p in paths if p is not None and len(p) > 1}
    return len(roots) == 1


def _clean(value) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value)
    return " ".join(str(value).replace("&amp;", "&").split())


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut.rstrip(" .,;:") + "..."
