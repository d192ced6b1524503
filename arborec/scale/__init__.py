"""Stage `scale`: the heavy stages on Ray (optional extra): item encoding and batch scoring/profiles as Ray Data jobs."""

from arborec.scale._batch import batch_recommend, batch_recommend_ray, read_batch_output
from arborec.scale._encode import encode_items_ray
from arborec.scale._engine import ENGINES, check_engine, ray_available, ray_session

__all__ = ["ENGINES", "check_engine", "ray_available", "ray_session", "encode_items_ray", "batch_recommend",
           "batch_recommend_ray", "read_batch_output"]
