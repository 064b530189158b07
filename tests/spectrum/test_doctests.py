"""The docstring examples of the spectrum modules run as documented."""

import doctest

import pytest

from reluscope.spectrum import _analyze, _conv, _effects, _mp, _powerlaw, _stats, report


@pytest.mark.parametrize("module", [_analyze, _conv, _effects, _mp, _powerlaw, _stats, report])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
