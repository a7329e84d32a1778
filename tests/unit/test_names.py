import pytest

from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.names import Naming, validate_name


@pytest.mark.parametrize("name", ["a", "alpha", "a1", "my-box-2", "0", "a" * 63])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name", ["", "A", "Alpha", "-a", "a-", "a_b", "a.b", "a b", "a/b", "a" * 64,
                                  "ü", None, 3, "alpha\n"])
def test_invalid_names_say_what_is_wrong(name):
    with pytest.raises(InvalidInput) as e:
        validate_name(name)
    assert e.value.status == 400
    assert "name" in e.value.message


def test_docker_names_follow_the_prefix():
    n = Naming("ws-")
    assert n.container("alpha") == "ws-alpha"
    assert n.home_volume("alpha") == "ws-alpha-home"
    assert n.docker_volume("alpha") == "ws-alpha-docker"
