"""The registry of every recommender that `arborec evaluate --model NAME` and the benchmarks can name."""

from __future__ import annotations

from arborec.baselines import (ALS, EASE, BSARec, GRU4Rec, ItemKNN, MostPop, Recommender, SASRec, SASRecPrefix,
                               SASRecText, UniSRec, UniSRecText)
from arborec.model import ArboRec
from arborec.text.recommender import FineTunedText, TextOnly

#: name -> class
MODELS: dict[str, type[Recommender]] = {
    cls.name: cls for cls in (MostPop, ItemKNN, EASE, ALS, GRU4Rec, SASRec, SASRecPrefix, BSARec, SASRecText, UniSRec, UniSRecText,
                        TextOnly, FineTunedText, ArboRec)
}


def make_model(name: str, **params) -> Recommender:
    """Instantiate a registered model by name, with keyword parameters."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls().set_params(**params)
