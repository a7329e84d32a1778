"""Reading a devcontainer.json: JSON with comments, what is applied, what is only warned about."""

from __future__ import annotations

import io
import tarfile

import pytest

from perry_jupyter.core import archive
from perry_jupyter.core.devcontainer import InvalidDevcontainer, command_argvs, parse


def test_comments_and_trailing_commas_are_read_and_comment_markers_in_strings_kept():
    config = parse("""// top
    {
      /* block, with a "quote" */
      "name": "A // B",  // not the end of the string
      "containerEnv": {"URL": "http://x/*y*/", "N": 3,},
      "remoteEnv": {"P": "${containerEnv:URL}|${containerEnv:MISSING:fallback}"},
      "forwardPorts": [3000, "8080", 3000, "localhost:5000",],
    }""", ".devcontainer/devcontainer.json")
    assert config.name == "A // B"
    assert config.container_env == {"URL": "http://x/*y*/", "N": "3"}
    assert config.remote_env == {"P": "http://x/*y*/|fallback"}
    assert config.forward_ports == [3000, 8080, 5000]
    assert config.warnings == []


def test_unsupported_keys_make_one_warning_that_names_them():
    config = parse('{"features": {}, "mounts": [], "customizations": {}, "build": {"dockerfile": "D", "target": "x"},'
                   ' "forwardPorts": ["db:5432", 3000]}', ".devcontainer/devcontainer.json")
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert "features" in warning and "mounts" in warning and "build.target" in warning and "db:5432" in warning
    assert config.forward_ports == [3000]
    assert "customizations" not in warning  # an editor's settings: nothing to warn about
    assert config.dockerfile == ".devcontainer/D" and config.context == ".devcontainer"


def test_the_three_command_forms():
    assert command_argvs("make setup") == [(None, ["sh", "-c", "make setup"])]
    assert command_argvs(["npm", "ci"]) == [(None, ["npm", "ci"])]
    assert command_argvs({"a": "x y", "b": ["z"]}) == [("a", ["sh", "-c", "x y"]), ("b", ["z"])]


@pytest.mark.parametrize("text, words", [
    ("{", "not valid JSON"),
    ("[]", "must hold a JSON object"),
    ('{"postCreateCommand": 3}', "postCreateCommand must be a command"),
    ('{"forwardPorts": ["eighty"]}', "not a port number"),
    ('{"containerEnv": {"1X": "a"}}', "not a valid variable name"),
    ('{"build": {"dockerfile": "../../etc/Dockerfile"}}', "outside the project"),
])
def test_a_bad_file_says_what_is_wrong(text, words):
    with pytest.raises(InvalidDevcontainer) as e:
        parse(text, ".devcontainer.json")
    assert words in e.value.message and ".devcontainer.json" in e.value.message
    assert e.value.status == 422  # the project's file is wrong, not the request


def test_reroot_makes_a_folders_tar_a_build_context():
    source = io.BytesIO()
    with tarfile.open(fileobj=source, mode="w") as tar:
        for name, data in (("ctx/Dockerfile", b"FROM x\n"), ("ctx/sub/f.txt", b"hi")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with tarfile.open(fileobj=io.BytesIO(archive.reroot(source.getvalue(), "ctx"))) as tar:
        assert sorted(tar.getnames()) == ["Dockerfile", "sub/f.txt"]
        assert tar.extractfile("sub/f.txt").read() == b"hi"
