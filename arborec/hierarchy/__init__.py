"""Stage `hierarchy`: the interest tree (from category paths, learned from vectors, or RQ ids), with labels."""

from arborec.hierarchy._tree import InterestTree

__all__ = ["InterestTree"]
