"""Moving a workspace to another engine, and cloning it: copies of its Docker volumes.

A volume is copied by GNU tar in helper containers (owners by number, extended attributes,
ACLs, device nodes: a nested engine's overlay2 layers survive). Between two engines, one
helper reads it on the source and one writes it on the destination, the stream handed on
chunk by chunk through this server (never whole in memory); within one engine, one helper
with both volumes pipes tar into tar there.

A move stops the workspace, copies its volumes, makes and starts its container on the
destination, and only once that answers switches the record to it and removes the source.
Until the switch the record names the source, so a move cut short (an error, an engine
gone, a killed server) leaves the source whole: what the destination got is removed at
once, or by `recover()` at the next start-up. The record's ``moving`` ({from, to}) says
which side to tidy: the one the record does not name.

A clone pauses the source for the copy (its processes frozen, its nested engine too, so the
files are consistent) and unpauses it, changing nothing else of it. A clone cut short is
removed whole.
"""

from __future__ import annotations

import contextlib
import logging
import shlex
from typing import Any, Callable, Iterable, Iterator

from .engine import Engine
from .errors import Conflict, InvalidInput, NotFound, PerryError
from .names import LABEL_MANAGED, LABEL_WORKSPACE, validate_name
from .workspaces import WorkspaceManager

log = logging.getLogger(__name__)

HELPER_LABEL = "perry.helper"
TAR_OPTIONS = ["--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls"]
READ = ["tar", *TAR_OPTIONS, "--sparse", "-C", "/from", "-cf", "-", "."]
WRITE = ["tar", *TAR_OPTIONS, "--same-permissions", "--same-owner", "-C", "/to", "-xf", "-"]
MB = 1 << 20
REPORT_EVERY = 32 * MB

Report = Callable[[dict], None]


def _nothing(event: dict) -> None:
    pass


class Transfers:
    def __init__(self, workspaces: WorkspaceManager, tasks_running: Callable[[str], bool] = lambda name: False):
        """``tasks_running(name)``: whether a task runs in workspace ``name`` (a move waits for none)."""
        self.workspaces = workspaces
        self.tasks_running = tasks_running

    # ------------------------------------------------------------------ move

    def check_move(self, name: str, engine: Any) -> dict[str, Any]:
        """Refuse a move that cannot be made, changing nothing; the workspace as it is."""
        manager = self.workspaces
        if not isinstance(engine, str) or not engine:
            raise InvalidInput("engine must be the name of an engine (`perry engines` lists them)")
        ws = manager.get(name)
        try:
            manager.engines.spec(engine)
        except NotFound as e:
            raise InvalidInput(e.message) from None
        if engine == ws["engine"]:
            raise InvalidInput(f"workspace {name!r} is already on engine {engine!r}")
        manager.require_reachable(ws)
        if self.tasks_running(name):
            raise Conflict(f"workspace {name!r} is busy: a task runs in it; wait for it to end or cancel it, "
                           "then move it", code="busy")
        manager.engines.call(engine, lambda e: e.facts())  # 503 naming the engine when it is down
        manager.require_image(engine)
        self._require_room(name, engine)
        return ws

    def move(self, name: str, engine: str, report: Report = _nothing, *, claim: Any = None) -> dict[str, Any]:
        manager = self.workspaces
        with manager.operations.hold(name, "move", claim) as claim:
            ws = self.check_move(name, engine)
            source = ws["engine"]
            say = self._saying(name, report, "move")
            src, dst = manager.engines.get(source), manager.engines.get(engine)
            container = manager.naming.container(name)
            was_running = ws["status"] == "running"
            manager.store.patch_workspace(name, moving={"from": source, "to": engine})
            try:
                say(f"stopping {name} on {source}")
                with src.errors(f"stopping workspace {name!r}"):
                    if src.container(container) is not None:
                        src.stop(container, timeout=manager.settings.stop_timeout)
                pairs = [(volume, volume) for volume in manager.volumes(name)]
                self._copy_volumes(name, src, dst, pairs, say)
                record = manager.store.get_workspace(name) or {}
                port = self._ssh_port(name, (record.get("ports") or {}).get("ssh"), engine, say)
                # The destination settles its own docker-in-docker mode (its host may allow privileged).
                moved = {**record, "engine": engine, "dind": None, "ports": {"ssh": port}}
                container_id = manager.create_container(name, moved, lambda m: say(m))
                manager.wait_ready(name, lambda m: say(m), engine_name=engine)
            except BaseException as e:
                log.warning("moving workspace %s to %s failed: %s", name, engine, e)
                if self._tidy_destination(name, engine):
                    manager.store.patch_workspace(name, moving=None)  # else recover() tidies when it can
                if was_running:
                    self._restart_source(name, claim, say)
                raise
            # The switch: from here the destination is the workspace.
            manager.store.patch_workspace(name, engine=engine, ports=moved["ports"], dind=moved["dind"],
                                          containerId=container_id, status="running", error=None)
            say(f"removing {name} from {source}")
            try:
                self._remove_objects(name, source)
            except PerryError as e:
                # The workspace is whole where it went; recover() removes the rest once it can.
                say(f"could not remove the old copy on {source} yet ({e.message}); Perry removes it later")
                return manager.announce(name)
            manager.store.patch_workspace(name, moving=None)
            say("moved")
            return manager.announce(name)

    def _restart_source(self, name: str, claim: Any, say: Callable[..., None]) -> None:
        try:
            say(f"starting {name} again where it was")
            self.workspaces.start(name, lambda m: say(m), claim=claim)
        except PerryError as e:
            log.warning("starting %s again after a failed move: %s", name, e.message)

    def _ssh_port(self, name: str, port: Any, engine: str, say: Callable[..., None]) -> int:
        """The workspace's SSH port on ``engine``: its own if free there, else another (said)."""
        new = self.workspaces.ssh_port_on(engine, port, name)
        if new != port:
            say(f"SSH port {port} is taken on {engine}: the workspace's SSH port there is {new}")
        return new

    # ------------------------------------------------------------------ clone

    def check_clone(self, source: str, name: Any) -> dict[str, Any]:
        """Refuse a clone that cannot be made, changing nothing; the source as it is."""
        manager = self.workspaces
        validate_name(name)
        ws = manager.get(source)
        manager.require_reachable(ws)
        if manager.store.get_workspace(name) is not None:
            raise Conflict(f"workspace {name!r} already exists")
        manager.require_image(ws["engine"])
        self._require_room(name, ws["engine"])
        return ws

    def clone(self, source: str, name: str, report: Report = _nothing, *, claim: Any = None) -> dict[str, Any]:
        manager = self.workspaces
        with manager.operations.hold(source, "clone", claim), manager.operations.hold(name, "create"):
            ws = self.check_clone(source, name)
            engine_name = ws["engine"]
            engine = manager.engines.get(engine_name)
            original = manager.store.get_workspace(source) or {}
            record = manager.reserve(name, clone=original.get("clone"), env=original.get("env") or {},
                                      engine=engine_name)
            # Nothing to clone with git: the home comes copied. ``cloning`` marks it half made until done.
            record = manager.store.patch_workspace(name, unfinished=False, cloning=source,
                                                   projectDir=original.get("projectDir")) or record
            say = self._saying(name, report, "clone")
            manager.events.publish("workspace.created", name, data=manager.get(name))
            made: list[str] = []
            try:
                say("creating volumes")
                made = manager.ensure_volumes(name)
                pairs = list(zip(manager.volumes(source), manager.volumes(name)))
                with self._paused(source, engine, say):
                    self._copy_volumes(name, engine, engine, pairs, say)
                container_id = manager.create_container(name, record, lambda m: say(m))
                record = manager.store.patch_workspace(name, containerId=container_id, dind=record["dind"],
                                                       ports=record["ports"], cloning=None) or record
                # Started like any workspace, but as one whose create has run (no git clone: the home has it).
                manager.complete(name, {**record, "status": "starting", "unfinished": False}, lambda m: say(m))
            except BaseException as e:
                log.warning("cloning workspace %s as %s failed: %s", source, name, e)
                manager.rollback(name, made)
                manager.events.publish("workspace.deleted", name)
                raise
            return manager.announce(name)

    @contextlib.contextmanager
    def _paused(self, name: str, engine: Engine, say: Callable[..., None]) -> Iterator[None]:
        """Workspace ``name`` paused while the block runs, if it runs."""
        container = self.workspaces.naming.container(name)
        with engine.errors(f"pausing workspace {name!r} for the copy"):
            found = engine.container(container)
            running = found is not None and found["state"] == "running"
            if running:
                say(f"pausing {name} while its volumes are copied")
                engine.pause(container)
        try:
            yield
        finally:
            if running:
                with engine.errors(f"unpausing workspace {name!r}"):
                    engine.unpause(container)
                say(f"{name} runs again")

    # ------------------------------------------------------------------ copies

    def _copy_volumes(self, name: str, src: Engine, dst: Engine, pairs: list[tuple[str, str]],
                      say: Callable[..., None]) -> None:
        manager = self.workspaces
        image = manager.settings.image
        labels = {LABEL_MANAGED: "true", HELPER_LABEL: "copy"}
        base = manager.naming.container(name)
        for volume, target in pairs:
            if src is dst:
                with src.errors(f"copying volume {volume} to {target}"):
                    helper = src.start_helper(f"{base}.copy", image, {volume: "/from", target: "/to"}, labels)
                    try:
                        say(f"copying {volume} ({self._size(src, helper)} MB)")
                        pipe = f"set -o pipefail; {shlex.join(READ)} | {shlex.join(WRITE)}"
                        self._succeeded(src.exec(helper, ["bash", "-c", pipe], user="root"))
                    finally:
                        src.remove_container(helper)
                continue
            if not dst.volume_exists(target):
                dst.create_volume(target, labels={LABEL_MANAGED: "true", LABEL_WORKSPACE: name})
            with src.errors(f"reading volume {volume} on engine {src.name!r}"):
                reader = src.start_helper(f"{base}.copy-out", image, {volume: "/from"}, labels)
            try:
                with dst.errors(f"writing volume {target} on engine {dst.name!r}"):
                    writer = dst.start_helper(f"{base}.copy-in", image, {target: "/to"}, labels)
                try:
                    with src.errors(f"reading volume {volume} on engine {src.name!r}"):
                        total = self._size(src, reader)
                    say(f"copying {volume}: {total} MB", step=0, steps=total)
                    with src.errors(f"reading volume {volume} on engine {src.name!r}"), \
                            contextlib.closing(src.exec_output(reader, READ, user="root")) as chunks, \
                            dst.errors(f"writing volume {target} on engine {dst.name!r}"):
                        dst.exec_input(writer, WRITE, counted(chunks, lambda n: say(
                            f"copying {volume}: {_mb(n)} of {total} MB", step=min(_mb(n), total), steps=total)),
                            user="root")
                finally:
                    dst.remove_container(writer)
            finally:
                src.remove_container(reader)

    @staticmethod
    def _size(engine: Engine, helper: str) -> int:
        """The MB of the helper's /from (at least 1, for a progress bar's total)."""
        result = engine.exec(helper, ["du", "-sb", "/from"], user="root")
        try:
            return max(1, _mb(int(result["stdout"].split()[0])))
        except (IndexError, ValueError):
            return 1

    @staticmethod
    def _succeeded(result: dict[str, Any]) -> None:
        if result["exitCode"] != 0:
            raise PerryError(f"copying a volume failed: {' '.join(result['stderr'].split())[-500:]}",
                             code="copy_failed", status=502)

    # ------------------------------------------------------------------ tidying

    def _require_room(self, name: str, engine: str) -> None:
        """A 409 when ``engine`` already has a container or a volume of workspace ``name``."""
        manager = self.workspaces
        target = manager.engines.get(engine)
        with target.errors(f"looking for workspace {name!r} on engine {engine!r}"):
            there = [manager.naming.container(name)] if target.container(manager.naming.container(name)) else []
            there += [volume for volume in manager.volumes(name) if target.volume_exists(volume)]
        if there:
            raise Conflict(f"engine {engine!r} already has {', '.join(there)} (of another workspace called "
                           f"{name!r}?); remove {'it' if len(there) == 1 else 'them'} there first")

    def _remove_objects(self, name: str, engine_name: str) -> None:
        """Remove what workspace ``name`` has on engine ``engine_name``: its container, its volumes
        and copy helpers."""
        manager = self.workspaces
        base = manager.naming.container(name)

        def remove(engine: Engine) -> None:
            with engine.errors(f"removing workspace {name!r} from engine {engine_name!r}"):
                for container in (base, f"{base}.copy-out", f"{base}.copy-in", f"{base}.copy"):
                    engine.remove_container(container)
                for volume in manager.volumes(name):
                    engine.remove_volume(volume)

        # Through the engines' health: one that is down is probed, and recover() runs when it is back.
        manager.engines.call(engine_name, remove)

    def _tidy_destination(self, name: str, engine: str) -> bool:
        """Remove what a failed move made on ``engine``; whether that could be done now."""
        try:
            self._remove_objects(name, engine)
        except Exception as e:
            log.warning("removing what the failed move of %s left on %s: %s", name, engine, e)
            return False
        return True

    def pending(self) -> bool:
        """Whether a move or a clone cut short still waits to be tidied (the state file only)."""
        return any(r.get("moving") or r.get("cloning") for r in self.workspaces.store.workspaces().values())

    def recover(self) -> list[str]:
        """At start-up (and when an engine comes back): finish tidying after moves and clones a
        crash cut short; what was done."""
        manager = self.workspaces
        done = []
        for name, record in manager.store.workspaces().items():
            if manager.operations.busy(name):
                continue
            moving = record.get("moving")
            try:
                if isinstance(moving, dict):
                    here = manager.engine_name(name, record)
                    other = moving.get("to") if here == moving.get("from") else moving.get("from")
                    if other and other != here and other in manager.engines.names():
                        self._remove_objects(name, other)
                    manager.store.patch_workspace(name, moving=None)
                    done.append(f"{name}: removed what an interrupted move left on {other}")
                elif record.get("cloning"):
                    self._recover_clone(name, record)
                    done.append(f"{name}: removed an interrupted clone of {record['cloning']}")
            except PerryError as e:
                log.debug("tidying after %s waits for its engine: %s", name, e.message)
        for change in done:
            log.info("recovered %s", change)
        return done

    def _recover_clone(self, name: str, record: dict[str, Any]) -> None:
        manager = self.workspaces
        engine_name = manager.engine_name(name, record)
        engine = manager.engines.get(engine_name)
        source = manager.naming.container(record["cloning"])
        with engine.errors(f"unpausing workspace {record['cloning']!r}"):
            found = engine.container(source)
            if found is not None and found["state"] == "paused":
                engine.unpause(source)
        self._remove_objects(name, engine_name)
        manager.store.remove_workspace(name)

    # ------------------------------------------------------------------ progress

    def _saying(self, name: str, report: Report, stage: str) -> Callable[..., None]:
        """``say(message, **more)``: an event to the caller and a `workspace.progress` to every client."""
        def say(message: str, **more: Any) -> None:
            event = {"stage": stage, "message": message, **more}
            report(event)
            self.workspaces.events.publish("workspace.progress", name, data=event)

        return say


def _mb(n: int) -> int:
    """Bytes as whole MB, rounded up (a copy that is done shows its whole total)."""
    return -(-n // MB)


def counted(chunks: Iterable[bytes], report: Callable[[int], None], every: int = REPORT_EVERY) -> Iterator[bytes]:
    """``chunks`` as they are, reporting the bytes passed every ``every`` bytes and at the end."""
    total, next_report = 0, every
    for chunk in chunks:
        total += len(chunk)
        if total >= next_report:
            report(total)
            next_report = total + every
        yield chunk
    report(total)
