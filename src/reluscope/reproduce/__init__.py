"""Reproductions of the three papers: figures regenerated, claims checked."""

from ._registry import PAPERS, ReproConfig, part, parts
from ._run import reproduce

__all__ = ["PAPERS", "ReproConfig", "part", "parts", "reproduce"]
