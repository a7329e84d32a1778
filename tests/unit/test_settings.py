import pytest

from perry_jupyter.core.errors import InvalidInput
from perry_jupyter.core.settings import SettingsStore
from perry_jupyter.app import PerryApp


def test_patch_validates_everything_before_changing_anything(tmp_path):
    store, settings = SettingsStore(tmp_path), PerryApp().core_config()
    store.patch(settings, {"dindMode": "off"})
    with pytest.raises(InvalidInput) as e:
        store.patch(settings, {"dindMode": "capabilities", "readyTimeout": "soon"})
    assert "readyTimeout" in e.value.message
    assert settings.dind_mode == "off"
    assert store.load() == {"dindMode": "off"}


def test_unknown_keys_are_named(tmp_path):
    with pytest.raises(InvalidInput) as e:
        SettingsStore(tmp_path).patch(PerryApp().core_config(), {"imageTag": "x"})
    assert "imageTag" in e.value.message


def test_saved_settings_apply_to_a_new_process(tmp_path):
    SettingsStore(tmp_path).patch(PerryApp().core_config(), {"env": {"EDITOR": "vim"}, "readyTimeout": 30})
    fresh = PerryApp().core_config()
    SettingsStore(tmp_path).apply(fresh)
    assert fresh.env_for("any") == {"EDITOR": "vim"} and fresh.ready_timeout == 30
    assert oct((tmp_path / "settings.json").stat().st_mode & 0o777) == "0o600"


def test_every_changeable_setting_changes_and_survives_a_restart(tmp_path):
    from perry_jupyter.core.settings import PATCHABLE

    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAA test\n")
    gitconfig = tmp_path / "gitconfig"
    gitconfig.write_text("[user]\n\tname = T\n")
    changes = {"sshPublicKeys": [str(key)], "gitConfig": str(gitconfig), "env": {"EDITOR": "vim"},
               "dindMode": "capabilities", "readyTimeout": 45, "terminalShell": "zsh",
               "imageAgents": ["codex", "opencode"]}
    assert set(changes) == set(PATCHABLE), "a new setting needs a case here"
    settings = PerryApp().core_config()
    saved = SettingsStore(tmp_path).patch(settings, changes)
    fresh = PerryApp().core_config()
    SettingsStore(tmp_path).apply(fresh)
    for name, (attr, _) in PATCHABLE.items():
        assert getattr(settings, attr) == getattr(fresh, attr), name
    assert settings.image_agents == ("opencode", "codex") and settings.dind_mode == "capabilities"
    assert settings.terminal_shell == "zsh" and settings.ready_timeout == 45
    assert list(saved["imageAgents"]) == ["opencode", "codex"]



def _patch_many(state_dir: str, key: str, values: list, start) -> None:
    store, settings = SettingsStore(state_dir), PerryApp().core_config()
    start.wait()
    lost = 0
    for value in values:
        store.patch(settings, {key: value})
        # Only this process writes `key`: reading anything else back means the other one
        # wrote over it with what it had read before.
        lost += SettingsStore(state_dir).load().get(key) != value
    assert lost == 0, f"{key}: {lost} of {len(values)} updates overwritten by the other process"


def test_two_processes_patching_at_once_lose_no_update(tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    timeouts, shells = list(range(1, 101)), [f"sh{i}" for i in range(100)]
    procs = [ctx.Process(target=_patch_many, args=(str(tmp_path), "readyTimeout", timeouts, start)),
             ctx.Process(target=_patch_many, args=(str(tmp_path), "terminalShell", shells, start))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    fresh = PerryApp().core_config()
    SettingsStore(tmp_path).apply(fresh)  # as a restarted server does
    assert (fresh.ready_timeout, fresh.terminal_shell) == (100, "sh99")
