"""The docstring examples of the preimage modules run as documented."""

import doctest

import pytest

from reluscope.preimage import _batch, _classify, _omni, _tol, _wendel, report


@pytest.mark.parametrize("module", [_batch, _classify, _omni, _tol, _wendel, report])
def test_doctests(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0
