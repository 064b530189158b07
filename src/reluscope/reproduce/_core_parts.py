"""Parts of the reproductions, each built on an analysis package.

Each function runs one experiment in the quick or full configuration and returns a
Section whose claims set the paper's statement beside the measurement.
"""

from __future__ import annotations

from ..report._registry import Section
from ._registry import ReproConfig, part


@part("tian", "teacher-student", "Teacher–student: mimicry and the theorems", order=10)
def tian_teacher_student(cfg: ReproConfig) -> Section:
    from ..teacher.report import reproduce, teacher_section

    return teacher_section(reproduce(quick=cfg.quick, seed=cfg.seed), cfg.quick)
