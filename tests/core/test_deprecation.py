"""Old option names keep working for one release, with a DeprecationWarning."""

import inspect
import warnings

import pytest

from faithmap.core.deprecation import renamed, renamed_options


@renamed_options(eps="radius", input_range="bounds")
def _search(x, *, radius=1.0, bounds=(0.0, 1.0)):
    return x, radius, bounds


def test_old_keyword_warns_and_is_passed_on():
    with pytest.warns(DeprecationWarning, match="'eps' is deprecated, use 'radius'"):
        assert _search(1, eps=2.0) == (1, 2.0, (0.0, 1.0))


def test_new_keyword_is_silent():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _search(1, radius=3.0, bounds=(0, 2)) == (1, 3.0, (0, 2))


def test_both_names_at_once_is_an_error():
    with pytest.raises(TypeError, match="pass 'radius' only"):
        _search(1, eps=1.0, radius=2.0)


def test_signature_shows_the_new_names():
    assert list(inspect.signature(_search).parameters) == ["x", "radius", "bounds"]


def test_renamed_on_init_names_the_class():
    class Explainer:
        @renamed_options(epsilon="radius")
        def __init__(self, *, radius=0.1):
            self.radius = radius

    with pytest.warns(DeprecationWarning, match=r"Explainer: 'epsilon'"):
        assert Explainer(epsilon=0.5).radius == 0.5


def test_renamed_leaves_the_input_alone():
    options = {"eps": 1}
    with pytest.warns(DeprecationWarning):
        assert renamed(options, {"eps": "radius"}, "f") == {"radius": 1}
    assert options == {"eps": 1}


def test_with_new_names_uses_the_functions_own_renames():
    from faithmap.core.deprecation import with_new_names

    with pytest.warns(DeprecationWarning, match="'eps' is deprecated"):
        assert with_new_names(_search, {"eps": 1, "steps": 2}) == {"radius": 1, "steps": 2}
    assert with_new_names(len, {"eps": 1}) == {"eps": 1}  # no renames declared
