"""Baseline recommenders, all behind one contract (`Recommender`) and one evaluation protocol."""

from arborec.baselines._base import Recommender
from arborec.baselines.als import ALS
from arborec.baselines.ease import EASE
from arborec.baselines.itemknn import ItemKNN
from arborec.baselines.popularity import MostPop

#: name -> class, the models `arborec evaluate --model NAME` knows.
MODELS: dict[str, type[Recommender]] = {cls.name: cls for cls in (MostPop, ItemKNN, EASE, ALS)}


def make_model(name: str, **params) -> Recommender:
    """Instantiate a registered model by name, with keyword parameters."""
    try:
        cls = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None
    return cls().set_params(**params)


__all__ = ["Recommender", "MostPop", "ItemKNN", "EASE", "ALS", "MODELS", "make_model"]
