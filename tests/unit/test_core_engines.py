"""Several engines on in-memory ones: workspaces follow their engine, placement, one engine down, the registry."""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from perry_jupyter.core.engines import Engines, engine_spec
from perry_jupyter.core.errors import Conflict, EngineUnavailable, InvalidInput, NotFound, PerryError
from perry_jupyter.core.events import EventBus
from perry_jupyter.core.state import StateStore
from perry_jupyter.core.workspaces import WorkspaceManager
from tests.fake_engine import IMAGE, TEST_PREFIX, FakeEngine, core_config, workspace_labels

ADDRESSES = {"local": "unix:///var/run/a.sock", "gpu": "ssh://perry@gpu.example:2222"}


@pytest.fixture
def fakes() -> dict[str, FakeEngine]:
    out = {name: FakeEngine(address, name=name) for name, address in ADDRESSES.items()}
    for engine in out.values():
        engine.add_image(IMAGE)
    return out


def engines_of(tmp_path, fakes, configured=None, events=None, backoff=2.0) -> Engines:
    by_address = {e.address: e for e in fakes.values()}
    return Engines(configured or ADDRESSES, tmp_path / "state", events=events, backoff=backoff,
                   factory=lambda address, **_: by_address[address])


def manager_of(tmp_path, fakes, events=None, **settings) -> WorkspaceManager:
    events = events or EventBus()
    defaults = dict(prefix=TEST_PREFIX, image=IMAGE, ssh_port_range=(2640, 2699), ssh_public_keys=[],
                    git_config=None, agent_files=(), host_home=str(tmp_path))
    return WorkspaceManager(engines_of(tmp_path, fakes, events=events), StateStore(tmp_path / "state"),
                            core_config(**{**defaults, **settings}), events)


def test_a_workspace_lives_on_the_engine_it_names_and_every_call_goes_there(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    ws = manager.create("far", engine="gpu")
    assert ws["engine"] == "gpu" and ws["status"] == "running"
    assert fakes["gpu"].running(f"{TEST_PREFIX}far") and fakes["local"].containers({}) == []
    assert manager.store.get_workspace("far")["engine"] == "gpu"
    # Its SSH command names that machine, not this one's bind address.
    assert ws["sshHost"] == "gpu.example" and ws["sshCommand"].endswith("workspace@gpu.example")
    fakes["gpu"].execs.clear()
    assert manager.exec("far", ["true"])["exitCode"] == 0
    assert [e["container"] for e in fakes["gpu"].execs] == [f"{TEST_PREFIX}far"]
    manager.stop("far")
    assert fakes["gpu"].running(f"{TEST_PREFIX}far")["state"] == "exited"
    manager.delete("far")
    assert fakes["gpu"].containers({}) == [] and fakes["gpu"].volumes == {}


def test_the_list_shows_every_engine_with_one_call_each(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("near", engine="local")
    manager.create("far", engine="gpu")
    before = {n: e.api_calls for n, e in fakes.items()}
    listed = {ws["name"]: ws["engine"] for ws in manager.list()}
    assert listed == {"near": "local", "far": "gpu"}
    assert {n: e.api_calls - before[n] for n, e in fakes.items()} == {"local": 1, "gpu": 1}


def test_records_from_before_engines_are_on_the_default_engine(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("old", engine="local")
    with manager.store.transaction() as data:
        del data["workspaces"]["old"]["engine"]
    assert manager.get("old")["engine"] == "local" and manager.exec("old", ["true"])["exitCode"] == 0


def test_placement_picks_the_engine_with_fewer_running_workspaces_then_more_memory(tmp_path, fakes):
    fakes["gpu"].memory = 64 << 30
    manager = manager_of(tmp_path, fakes)
    assert manager.create("one")["engine"] == "gpu"  # none running anywhere: the bigger machine
    assert manager.create("two")["engine"] == "local"  # gpu runs one now
    fakes["local"].images.clear()
    assert manager.create("three")["engine"] == "gpu"  # only gpu has the image


def test_placement_is_replaceable(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    seen = []
    manager.placement = lambda name, candidates: seen.append((name, candidates)) or "local"
    assert manager.create("one")["engine"] == "local"
    assert seen[0][0] == "one" and {c["name"] for c in seen[0][1]} == {"local", "gpu"}


def test_an_engine_without_the_image_is_a_409_that_names_the_build_command(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    fakes["gpu"].images.clear()
    with pytest.raises(PerryError, match="perry build --engine gpu") as e:
        manager.create("one", engine="gpu")
    assert e.value.status == 409 and e.value.code == "image_missing"
    fakes["local"].images.clear()
    with pytest.raises(PerryError, match="perry build --engine") as e:
        manager.create("two")
    assert e.value.status == 409 and manager.store.workspaces() == {}


def test_an_unknown_engine_is_bad_input_and_changes_nothing(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    for bad in ("nope", 7):
        with pytest.raises(InvalidInput):
            manager.create("one", engine=bad)
    assert manager.store.workspaces() == {} and all(e.calls == [] for e in fakes.values())


def test_one_engine_down_leaves_the_others_working(tmp_path, fakes):
    events = EventBus()
    seen = []
    events.subscribe(seen.append)
    manager = manager_of(tmp_path, fakes, events=events)
    manager.create("near", engine="local")
    manager.create("far", engine="gpu")
    fakes["gpu"].reachable = False
    listed = {ws["name"]: ws for ws in manager.list()}
    assert listed["near"]["status"] == "running"
    far = listed["far"]
    assert far["status"] == "unreachable" and far["lastStatus"] == "running" and far["engine"] == "gpu"
    assert "not reachable" in far["error"]
    assert [e["engine"] for e in seen if e["type"] == "engine.down"] == ["gpu"]
    # While it rests, lists do not ask it again.
    calls = fakes["gpu"].calls[:]
    manager.list()
    assert fakes["gpu"].calls == calls
    assert manager.exec("near", ["true"])["exitCode"] == 0
    with pytest.raises(EngineUnavailable, match="'gpu'") as e:
        manager.exec("far", ["true"])
    assert e.value.status == 503
    with pytest.raises(EngineUnavailable):
        manager.delete("far")
    assert manager.store.get_workspace("far") is not None
    # Reconcile leaves its records as they were.
    manager.reconcile()
    assert manager.store.get_workspace("far")["status"] == "running"
    # Back: a call on it succeeds, and the list shows it again.
    fakes["gpu"].reachable = True
    assert manager.get("far")["status"] == "running"
    assert {ws["name"]: ws["status"] for ws in manager.list()} == {"near": "running", "far": "running"}
    assert [e["engine"] for e in seen if e["type"] == "engine.up"] == ["gpu"]


def test_one_engine_alone_keeps_its_errors(tmp_path):
    engine = FakeEngine()
    engine.add_image(IMAGE)
    manager = WorkspaceManager(engine, StateStore(tmp_path), core_config(
        prefix=TEST_PREFIX, image=IMAGE, ssh_public_keys=[], git_config=None, agent_files=(), host_home=str(tmp_path)))
    manager.create("one")
    engine.reachable = False
    with pytest.raises(EngineUnavailable):
        manager.list()
    assert manager.store.get_workspace("one")["engine"] == "local"


def test_adopted_containers_keep_the_engine_they_were_found_on(tmp_path, fakes):
    fakes["gpu"].add_container(f"{TEST_PREFIX}stray", labels=workspace_labels("stray"), ports={"22/tcp": 2650})
    manager = manager_of(tmp_path, fakes)
    manager.reconcile()
    assert manager.store.get_workspace("stray")["engine"] == "gpu"
    assert manager.get("stray")["engine"] == "gpu"


def test_engines_added_at_run_time_are_kept_and_removed_only_when_empty(tmp_path, fakes):
    engines = engines_of(tmp_path, fakes, configured={"local": ADDRESSES["local"]})
    added = engines.add("box", {"address": "tcp://admin:s3cret@box.example:2376", "tls_ca": "/ca.pem"})
    assert added["address"] == "tcp://admin:***@box.example:2376" and "s3cret" not in json.dumps(added)
    assert added["sshHost"] == "box.example" and not added["configured"]
    assert "box" in engines_of(tmp_path, fakes, configured={"local": ADDRESSES["local"]}).names()
    with pytest.raises(Conflict):
        engines.add("box", "unix:///x")
    with pytest.raises(Conflict, match="holds 2 workspace"):
        engines.remove("box", holds=2)
    with pytest.raises(Conflict, match="configuration"):
        engines.remove("local", holds=0)
    engines.remove("box", holds=0)
    assert engines_of(tmp_path, fakes, configured={"local": ADDRESSES["local"]}).names() == ["local"]
    with pytest.raises(NotFound):
        engines.remove("box", holds=0)


@pytest.mark.parametrize("name, value", [
    ("Bad Name", "unix:///x"), ("ok", "http://host"), ("ok", "host:2376"), ("ok", {"address": "unix:///x", "what": 1}),
    ("ok", {"address": 5}), ("ok", ["unix:///x"]),
])
def test_bad_engines_are_refused_with_what_is_wrong(name, value):
    with pytest.raises(InvalidInput):
        engine_spec(name, value)


def test_a_docker_context_gives_its_address_and_tls_files(tmp_path, monkeypatch, fakes):
    digest = hashlib.sha256(b"remote").hexdigest()
    meta = tmp_path / "docker" / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "remote", "Endpoints": {"docker": {"Host": "tcp://ctx.example:2376"}}}))
    tls = tmp_path / "docker" / "contexts" / "tls" / digest / "docker"
    tls.mkdir(parents=True)
    for f in ("ca", "cert", "key"):
        (tls / f"{f}.pem").write_text("x")
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    built = []
    engines = Engines({"ctx": "context:remote"}, tmp_path / "state",
                      factory=lambda address, **kw: built.append((address, kw)) or FakeEngine(address))
    engines.get("ctx")
    address, kw = built[0]
    assert address == "tcp://ctx.example:2376" and kw["tls"] == {k: str(tls / f"{k}.pem") for k in ("ca", "cert", "key")}
    assert engines.ssh_host("ctx") == "ctx.example"
    with pytest.raises(InvalidInput, match="no usable Docker context 'other'"):
        engines.add("other", "context:other")


def test_ssh_engines_pin_host_keys_in_perrys_own_known_hosts(tmp_path):
    built = []
    engines = Engines({"box": {"address": "ssh://perry@box.example", "ssh_key": "~/.ssh/perry"}}, tmp_path / "state",
                      factory=lambda address, **kw: built.append(kw) or FakeEngine(address))
    engines.get("box")
    options = built[0]["ssh_options"]
    assert f"UserKnownHostsFile={tmp_path / 'state' / 'engines' / 'known_hosts'}" in options
    assert "StrictHostKeyChecking=accept-new" in options and "BatchMode=yes" in options
    assert any(o.startswith("IdentityFile=") and not o.endswith("~/.ssh/perry") for o in options)


def test_the_image_is_copied_between_engines_by_save_into_load(tmp_path, fakes):
    from perry_jupyter.core.services import Perry

    fakes["gpu"].images.clear()
    perry = Perry(tmp_path / "state", core_config(prefix=TEST_PREFIX, image=IMAGE, ssh_public_keys=[], git_config=None,
                                                  agent_files=(), host_home=str(tmp_path)),
                  engines=engines_of(tmp_path, fakes))
    events = []
    status = perry.copy_image("local", "gpu", progress=events.append)
    assert status["present"] and fakes["gpu"].images[IMAGE]["id"] == fakes["local"].images[IMAGE]["id"]
    assert events[0]["message"] == f"copying {IMAGE} from local to gpu" and events[-1]["message"].endswith("MB copied")
    assert perry.workspaces.create("far", engine="gpu")["status"] == "running"
    for source, target in (("nope", "gpu"), ("gpu", "gpu"), ("local", 3)):
        with pytest.raises(InvalidInput):
            perry.copy_image(source, target)
    fakes["local"].images.clear()
    fakes["gpu"].images.clear()
    with pytest.raises(PerryError, match="no image .* to copy either") as e:
        perry.copy_image("local", "gpu")
    assert e.value.status == 409


def test_the_probe_notices_an_engine_back_and_reconciles_it(tmp_path, fakes):
    from perry_jupyter.core.services import Perry

    perry = Perry(tmp_path / "state", core_config(prefix=TEST_PREFIX, image=IMAGE, ssh_public_keys=[], git_config=None,
                                                  agent_files=(), host_home=str(tmp_path)),
                  engines=engines_of(tmp_path, fakes, backoff=0.05))
    seen = []
    perry.engines.events.subscribe(seen.append)
    perry.workspaces.create("far", engine="gpu")
    fakes["gpu"].reachable = False
    assert perry.workspaces.list()[0]["status"] == "unreachable"
    assert perry.probe_engines() == []  # resting: not asked before its back-off is over
    time.sleep(0.06)
    assert perry.probe_engines() == []  # asked, still down: the back-off doubles
    # Back, with its container removed meanwhile: the probe brings it back and reconcile says so.
    fakes["gpu"].reachable = True
    fakes["gpu"].remove_container(f"{TEST_PREFIX}far")
    time.sleep(0.11)  # the doubled back-off
    assert perry.probe_engines() == ["gpu"]
    assert [e["type"] for e in seen if e["type"].startswith("engine.")] == ["engine.down", "engine.up"]
    assert perry.store.get_workspace("far")["status"] == "error"



def test_reconciling_engines_that_came_back_leaves_creates_in_flight_alone(tmp_path, fakes):
    manager = manager_of(tmp_path, fakes)
    manager.create("near", engine="local")
    manager.create("far", engine="gpu")
    with manager.store.transaction() as data:
        data["workspaces"]["new"] = {**data["workspaces"]["far"], "name": "new", "status": "creating"}
    for name in ("near", "far"):
        fakes["local" if name == "near" else "gpu"].remove_container(f"{TEST_PREFIX}{name}")
    with manager.operations.hold("far", "stop"):
        assert manager.reconcile(["gpu"]) == []  # far is busy; near is not on gpu
    assert manager.reconcile(["gpu"]) == ["far: container missing"]
    assert manager.store.get_workspace("new")["status"] == "creating"
    assert manager.store.get_workspace("near")["status"] == "running"
