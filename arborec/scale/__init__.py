"""Stage `scale`: heavy stages on Ray (optional extra): encoding and batch scoring (Ray Data), training (Ray Train)."""

from arborec.scale._batch import batch_recommend, batch_recommend_ray, read_batch_output
from arborec.scale._encode import encode_items_ray
from arborec.scale._engine import ENGINES, check_engine, ray_available, ray_session
from arborec.scale._train import fit_ray

__all__ = ["ENGINES", "check_engine", "ray_available", "ray_session", "encode_items_ray", "batch_recommend",
           "batch_recommend_ray", "read_batch_output", "fit_ray"]
