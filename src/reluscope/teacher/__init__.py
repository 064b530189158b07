"""Teacher–student framework (Tian 2018): receptive-field teachers, students, mimicry, theorem checks."""

from ._author import AuthorSetup, author_setup, make_author_teacher
from ._fc import FCConfig, FCNet, FCResult, best_match, correlation_matrix, make_fc_teacher, run_fc
from ._mimicry import LCConfig, LCResult, LevelMimicry, level_mimicry, run_lc, student_mimicry
from ._student import FieldLinear, LCStudent, train_student
from ._teacher import LCTeacher, Transition, make_teacher
from ._theorems import (
    Setup,
    TheoremCheck,
    check_all,
    check_batchnorm_projection,
    check_disentanglement,
    check_marginal_recursion,
    check_matrix_form,
    check_reformulation_backward,
    check_reformulation_forward,
    check_relu_vs_linear,
    construct_relu_solution,
    make_setup,
)
from ._tree import FieldTree, build_tree

__all__ = ["AuthorSetup", "FCConfig", "FCNet", "FCResult",
           "FieldLinear", "FieldTree", "LCConfig", "LCResult", "LCStudent",
           "LCTeacher", "LevelMimicry", "Setup", "TheoremCheck", "Transition", "best_match", "build_tree",
           "check_all", "check_batchnorm_projection", "check_disentanglement", "check_marginal_recursion",
           "check_matrix_form", "check_reformulation_backward", "check_reformulation_forward",
           "check_relu_vs_linear", "construct_relu_solution", "correlation_matrix", "level_mimicry",
           "author_setup", "make_author_teacher", "make_fc_teacher", "make_setup", "make_teacher",
           "run_fc", "run_lc", "student_mimicry",
           "train_student"]
