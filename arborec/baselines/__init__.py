"""Baseline recommenders, all behind one contract (`Recommender`) and one evaluation protocol."""

from arborec.base import Recommender
from arborec.baselines.als import ALS
from arborec.baselines.bsarec import BSARec
from arborec.baselines.ease import EASE
from arborec.baselines.gru4rec import GRU4Rec
from arborec.baselines.itemknn import ItemKNN
from arborec.baselines.popularity import MostPop
from arborec.baselines.sasrec import SASRec, SASRecPrefix
from arborec.baselines.sasrec_text import SASRecText
from arborec.baselines.unisrec import UniSRec, UniSRecText

__all__ = ["Recommender", "MostPop", "ItemKNN", "EASE", "ALS", "GRU4Rec", "SASRec", "SASRecPrefix", "BSARec", "SASRecText", "UniSRec", "UniSRecText"]
