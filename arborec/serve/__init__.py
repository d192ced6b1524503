"""Stage `serve`: the online service - event ingestion, real-time user interests, explained retrieval, API, page."""

from arborec.serve.app import create_app
from arborec.serve.catalog import ServedCatalog
from arborec.serve.loading import load_service, service_from_data, service_from_model
from arborec.serve.retrieval import ItemIndex
from arborec.serve.scorers import HistoryScorer, ModelScorer, OnlineScorer
from arborec.serve.security import Scope, hash_api_key, make_api_key
from arborec.serve.segments import ServedSegments
from arborec.serve.service import InterestService
from arborec.serve.settings import ServeSettings
from arborec.serve.store import Store

__all__ = ["create_app", "InterestService", "OnlineScorer", "HistoryScorer", "ItemIndex", "ServedCatalog",
           "ServeSettings", "Store", "load_service", "service_from_data", "service_from_model",
           "ModelScorer", "ServedSegments", "make_api_key",
           "hash_api_key", "Scope"]
