"""The docstring examples of the shadow modules run as documented."""

import doctest

import pytest

from reluscope.shadow import (
    _augment,
    _choices,
    _experiment,
    _graph_shadow,
    _paired,
    _sampler,
    experiment_report,
)


@pytest.mark.parametrize("module", [_augment, _choices, _experiment, _graph_shadow, _paired, _sampler,
                                    experiment_report])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
