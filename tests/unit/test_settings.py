import pytest

from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.settings import SettingsStore
from perry_jupyter.core.workspaces import WorkspaceSettings


def test_patch_validates_everything_before_changing_anything(tmp_path):
    store, settings = SettingsStore(tmp_path), WorkspaceSettings()
    store.patch(settings, {"dindMode": "off"})
    with pytest.raises(InvalidInput) as e:
        store.patch(settings, {"dindMode": "capabilities", "readyTimeout": "soon"})
    assert "readyTimeout" in e.value.message
    assert settings.dind_mode == "off"
    assert store.load() == {"dindMode": "off"}


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(InvalidInput) as e:
        SettingsStore(tmp_path).patch(WorkspaceSettings(), {"imageTag": "x"})
    assert "imageTag" in e.value.message


def test_saved_settings_apply_to_a_new_process(tmp_path):
    SettingsStore(tmp_path).patch(WorkspaceSettings(), {"env": {"EDITOR": "vim"}, "readyTimeout": 30})
    fresh = WorkspaceSettings()
    SettingsStore(tmp_path).apply(fresh)
    assert fresh.env_for("any") == {"EDITOR": "vim"} and fresh.ready_timeout == 30
    assert oct((tmp_path / "settings.json").stat().st_mode & 0o777) == "0o600"
