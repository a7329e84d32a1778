"""ipywidgets for Perry: ``WorkspaceManager()`` and ``SessionViewer("alpha")``.

Both talk to the REST API through ``perry_jupyter.client`` (the server is found as for
``%perry``: handed to the kernel by the extension, else the CLI's configuration), and
neither ever blocks the kernel: every request runs on a small thread pool, and what comes
back updates the widgets' traits (which ipykernel sends from any thread) under one lock
per widget. Server errors appear in the widget, as the server's message.

Live refresh: a background thread listens on the events WebSocket
(``/perry/api/events``) and refreshes what changed; when the socket cannot be opened it
polls instead, and tries the socket again later. ``close()`` stops all of it.

``wait()`` blocks until the background work started so far is done (for scripts and tests).
"""

from __future__ import annotations

import json
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable
from urllib.parse import urlsplit

import ipywidgets as W

from perry_worker import agents as agent_registry

from .. import present
from ..client import PerryClient, PerryClientError
from .draw import cell, escape, html, note

ERROR_STYLE = "color:#cf222e"
NOTE_STYLE = "color:#57606a"


def open_events(client: PerryClient, workspace: str | None = None, timeout: float = 1.0):
    """A websocket-client connection to the events stream, authenticated like the client."""
    import websocket

    return websocket.create_connection(client.websocket_url("perry/api/events", workspace=workspace),
                                       header=client.websocket_headers(), timeout=timeout)


def in_this_jupyter(client: PerryClient) -> bool:
    """True when the client's server is the Jupyter server running this kernel (kernel_env)."""
    here = os.environ.get("PERRY_JUPYTER_URL", "")
    return bool(here) and here.rstrip("/") == client.url.rstrip("/")


def terminal_link_html(client: PerryClient, terminal: dict, ws: dict | None = None) -> str:
    """A link that opens the terminal in JupyterLab's own terminal widget.

    JupyterLab runs ``terminal:open`` for elements carrying its command-linker data
    attributes (after asking, for output it did not make itself); the href serves
    frontends that have a terminal page (Notebook 7). Where the terminal lives on another
    server than this notebook's, there is no page to open: the CLI and SSH lines say how.
    """
    name = str(terminal.get("name"))
    workspace = str(terminal.get("workspace") or (ws or {}).get("name") or "")
    how = f"<code>perry shell {escape(workspace)}</code>"
    ssh = present.ssh_line(ws) if ws else None
    if ssh:
        how += f" or <code>{escape(ssh)}</code>"
    if not in_this_jupyter(client):
        return f'<span>terminal {escape(name)} is open on {escape(client.url)}; from a shell: {how}</span>'
    base = urlsplit(client.url).path.rstrip("/")
    args = escape(json.dumps({"name": name}))
    return (f'<a href="{escape(base)}/terminals/{escape(name)}" target="_blank" '
            f'data-commandlinker-command="terminal:open" data-commandlinker-args="{args}" '
            f'class="perry-terminal-link">open terminal {escape(name)}</a>'
            f' <span style="{NOTE_STYLE}">(or {how})</span>')


# -- plumbing shared by the widgets -----------------------------------------------------

class _Background:
    """A thread pool whose jobs report server errors to ``show_error``; ``wait()`` for tests."""

    def __init__(self, show_error: Callable[[str], None], workers: int = 4):
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="perry-widget")
        self._pending: set[Future] = set()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._show_error = show_error
        self.closed = threading.Event()

    def submit(self, fn: Callable[..., Any], *args: Any, done: Callable[[Any], None] | None = None,
               failed: Callable[[PerryClientError], None] | None = None) -> Future | None:
        if self.closed.is_set():
            return None

        def job():
            try:
                result = fn(*args)
            except PerryClientError as e:
                self._show_error(e.message)
                if failed is not None:
                    failed(e)
                return None
            except Exception as e:  # a bug or a dropped connection: say it, keep the widget alive
                self._show_error(f"{type(e).__name__}: {e}")
                if failed is not None:
                    failed(PerryClientError(None, "error", str(e)))
                return None
            if done is not None:
                try:
                    done(result)
                except Exception as e:
                    self._show_error(f"{type(e).__name__}: {e}")
            return result

        with self._lock:
            future = self._pool.submit(job)
            self._pending.add(future)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, future: Future) -> None:
        with self._lock:
            self._pending.discard(future)
            self._idle.notify_all()

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until no job is pending (jobs started by jobs included); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        self.closed.set()
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Live:
    """Calls ``on_event(event)`` for each event of the stream, from a daemon thread.

    When the WebSocket cannot be opened (or drops), it calls ``on_poll()`` every
    ``interval`` seconds until the socket opens again; ``on_poll()`` also runs after
    every (re)connection, for what happened meanwhile.
    """

    def __init__(self, client: PerryClient, workspace: str | None, on_event: Callable[[dict], None],
                 on_poll: Callable[[], None], closed: threading.Event, interval: float = 5.0,
                 mode: str = "events"):
        self.client, self.workspace, self.interval, self.mode = client, workspace, interval, mode
        self.on_event, self.on_poll, self.closed = on_event, on_poll, closed
        self.connected = threading.Event()
        self._socket = None
        self.thread = threading.Thread(target=self._run, name="perry-widget-live", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.closed.is_set():
            if self.mode == "events":
                try:
                    self._socket = open_events(self.client, self.workspace)
                except Exception:
                    self._socket = None
            if self._socket is None:
                self.closed.wait(self.interval)
                if not self.closed.is_set():
                    self._call(self.on_poll)
                continue
            self.connected.set()
            self._call(self.on_poll)
            self._listen(self._socket)
            self.connected.clear()
            self._socket = None

    def _listen(self, sock) -> None:
        import websocket

        while not self.closed.is_set():
            try:
                message = sock.recv()
            except websocket.WebSocketTimeoutException:
                continue
            except Exception:
                break
            if not message:
                break
            try:
                event = json.loads(message)
            except ValueError:
                continue
            if isinstance(event, dict):
                self._call(self.on_event, event)
        try:
            sock.close()
        except Exception:
            pass

    def _call(self, fn: Callable, *args: Any) -> None:
        try:
            fn(*args)
        except Exception:
            pass  # a refresh that failed shows its error in the widget itself

    def close(self) -> None:
        self.closed.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.close()
            except Exception:
                pass


def _html(value: str = "", **layout: Any) -> W.HTML:
    return W.HTML(value=value, layout=W.Layout(**layout) if layout else W.Layout())


def _button(description: str, tooltip: str, style: str = "", icon: str = "", width: str = "auto") -> W.Button:
    return W.Button(description=description, tooltip=tooltip, button_style=style, icon=icon,
                    layout=W.Layout(width=width))


class _PerryWidget(W.VBox):
    """A VBox with a message line, background work and a client."""

    def _setup(self, client: PerryClient | None) -> None:
        self._ui = threading.RLock()
        self._tickets: dict[str, int] = {}
        self._applied: dict[str, int] = {}
        self.message = _html()
        self.message.add_class("perry-message")
        self._bg = _Background(self.show_error)
        self.client = client
        if self.client is None:
            try:
                self.client = PerryClient.from_config()
            except ValueError as e:
                self.client = PerryClient("http://127.0.0.1:7391")
                self.show_error(str(e))

    def _ticket(self, kind: str) -> int:
        """A number for a load as it starts: answers that arrive out of order are not applied."""
        with self._ui:
            self._tickets[kind] = self._tickets.get(kind, 0) + 1
            return self._tickets[kind]

    def _fresh(self, kind: str, ticket: int) -> bool:
        """True (and remembered) unless a load that started later was applied already. Hold ``_ui``."""
        if ticket < self._applied.get(kind, 0):
            return False
        self._applied[kind] = ticket
        return True

    def show_error(self, message: str) -> None:
        with self._ui:
            self.message.value = f'<div class="perry-error" style="{ERROR_STYLE}">{escape(message)}</div>'

    def show_note(self, message: str) -> None:
        with self._ui:
            self.message.value = f'<div class="perry-note" style="{NOTE_STYLE}">{escape(message)}</div>' if message else ""

    def wait(self, timeout: float = 120.0) -> bool:
        """Block until the background work started so far is done (scripts and tests)."""
        return self._bg.wait(timeout)

    def close(self) -> None:
        live = getattr(self, "_live", None)
        if live is not None:
            live.close()
        self._bg.close()
        super().close()


# -- WorkspaceManager ------------------------------------------------------------------

class _Row:
    """The widgets of one workspace in the table."""

    def __init__(self, manager: "WorkspaceManager", name: str):
        self.name = name
        self.ws: dict = {"name": name}
        self.busy = ""
        self.name_cell = _html(f"<b>{escape(name)}</b>", width="160px")
        self.status_cell = _html(width="110px")
        self.ssh_cell = _html(width="260px")
        self.engine_cell = _html(width="90px")
        self.use_cell = _html(width="190px")
        self.start_button = _button("start", f"Start {name}", icon="play")
        self.stop_button = _button("stop", f"Stop {name}", icon="stop")
        self.terminal_button = _button("terminal", f"Open a terminal in {name}", icon="terminal")
        self.delete_button = _button("delete", f"Delete {name}", style="danger", icon="trash")
        self.confirm_button = _button("delete", f"Delete {name} and its volumes", style="danger")
        self.cancel_button = _button("cancel", "Keep the workspace")
        self.confirm_text = _html(f"Delete <b>{escape(name)}</b>, its container and both of its volumes "
                                  "(everything under /home/workspace)? This cannot be undone.")
        self.confirm_box = W.HBox([self.confirm_text, self.confirm_button, self.cancel_button],
                                  layout=W.Layout(display="none"))
        self.link = _html()
        self.start_button.on_click(lambda _: manager.start(name))
        self.stop_button.on_click(lambda _: manager.stop(name))
        self.terminal_button.on_click(lambda _: manager.open_terminal(name))
        self.delete_button.on_click(lambda _: manager.delete(name))
        self.confirm_button.on_click(lambda _: manager.delete(name, confirmed=True))
        self.cancel_button.on_click(lambda _: self.ask_confirmation(False))
        self.box = W.VBox([
            W.HBox([self.name_cell, self.status_cell, self.engine_cell, self.use_cell, self.ssh_cell,
                    self.start_button, self.stop_button,
                    self.terminal_button, self.delete_button]),
            self.confirm_box, self.link,
        ])
        self.box.add_class("perry-row")

    def ask_confirmation(self, show: bool) -> None:
        self.confirm_box.layout.display = "flex" if show else "none"

    @property
    def confirming(self) -> bool:
        return self.confirm_box.layout.display != "none"

    def update(self, ws: dict | None) -> None:
        if ws is not None:
            self.ws = ws
        status = str(self.ws.get("status") or "?")
        badge = cell(present.status(status))
        if self.busy:
            badge += f' <span style="{NOTE_STYLE}">{escape(self.busy)}…</span>'
        if self.ws.get("error"):
            badge += f'<div style="{ERROR_STYLE}">{escape(self.ws["error"])}</div>'
        self.status_cell.value = badge
        ssh = present.ssh_line(self.ws) if status == "running" else None
        self.ssh_cell.value = f"<code>{escape(ssh)}</code>" if ssh else "-"
        engine = self.ws.get("engine")
        self.engine_cell.value = (f'<span title="Docker engine">{escape(str(engine))}</span>' if engine else "")
        use = self.ws.get("use") if status == "running" else None
        self.use_cell.value = (f'<span style="{NOTE_STYLE}">cpu {escape(present.cpu_text(use))} · '
                               f'{escape(present.memory_use_text(use))}</span>' if use else "")
        busy = bool(self.busy)
        self.start_button.disabled = busy or status in ("running", "creating")
        self.stop_button.disabled = busy or status != "running"
        self.terminal_button.disabled = busy or status != "running"
        self.delete_button.disabled = busy or status == "creating"
        self.confirm_button.disabled = busy


class WorkspaceManager(_PerryWidget):
    """A table of Perry workspaces with per-row actions, a create form and live refresh.

    ``live``: ``"events"`` (the events WebSocket, polling when it cannot connect),
    ``"poll"`` (every ``interval`` seconds) or ``None`` (the refresh button only).
    """

    def __init__(self, client: PerryClient | None = None, live: str | None = "events", interval: float = 5.0,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self._setup(client)
        self.add_class("perry-workspace-manager")
        self.rows: dict[str, _Row] = {}
        self.workspaces: list[dict] = []
        self.info: dict = {}
        self.title = _html(f"<b>Perry workspaces</b> <span style=\"{NOTE_STYLE}\">at {escape(self.client.url)}</span>")
        self.refresh_button = _button("", "Refresh", icon="refresh", width="36px")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.banner = _html()
        self.banner.add_class("perry-banner")
        self.table = W.VBox()
        self.empty = _html()
        self.name_input = W.Text(placeholder="new workspace name", layout=W.Layout(width="200px"))
        self.clone_input = W.Text(placeholder="git URL to clone (optional)", layout=W.Layout(width="320px"))
        self.create_button = _button("create", "Create the workspace and wait until it is ready",
                                     style="primary", icon="plus")
        self.create_button.on_click(lambda _: self.create(self.name_input.value, self.clone_input.value))
        self.children = [
            W.HBox([self.title, self.refresh_button]), self.banner, self.message, self.table, self.empty,
            W.HBox([self.name_input, self.clone_input, self.create_button]),
        ]
        self._refresh_pending = threading.Event()
        self._bg.submit(self.client.info, done=self._show_info)
        self.refresh()
        self._live = _Live(self.client, None, self._on_event, self.refresh, self._bg.closed, interval,
                           mode=live) if live in ("events", "poll") else None

    # -- what the buttons do (callable from code too) ----------------------------------

    def refresh(self) -> None:
        """Reload the list in the background (one at a time: repeated calls fold into one)."""
        if self._refresh_pending.is_set():
            return
        self._refresh_pending.set()

        def load():
            self._refresh_pending.clear()
            ticket = self._ticket("list")
            return ticket, self.client.list_workspaces()

        self._bg.submit(load, done=lambda answer: self._apply(answer[1], answer[0]),
                        failed=lambda e: self._refresh_pending.clear())

    def create(self, name: str, clone: str | None = None) -> None:
        name = (name or "").strip()
        if not name:
            self.show_error("give the new workspace a name")
            return
        clone = (clone or "").strip() or None
        self.show_note(f"Creating workspace {name} (the first start can take a minute)…")
        with self._ui:
            self.create_button.disabled = True

        def done(ws: dict) -> None:
            self.show_note(f"Created workspace {name}: {ws.get('status')}")
            with self._ui:
                self.name_input.value = ""
                self.clone_input.value = ""

        def finished(_=None):
            with self._ui:
                self.create_button.disabled = False
            self.refresh()

        self._bg.submit(self.client.create_workspace, name, clone,
                        done=lambda ws: (done(ws), finished()), failed=finished)
        self.refresh()  # shows it as `creating` meanwhile

    def start(self, name: str) -> None:
        self._row_action(name, "starting", self.client.start_workspace, f"Started workspace {name}")

    def stop(self, name: str) -> None:
        self._row_action(name, "stopping", self.client.stop_workspace, f"Stopped workspace {name}")

    def delete(self, name: str, confirmed: bool = False) -> None:
        """The row's delete button asks first; ``confirmed=True`` is the answer."""
        row = self.rows.get(name)
        if not confirmed:
            if row is not None:
                with self._ui:
                    row.ask_confirmation(True)
            return
        if row is not None:
            with self._ui:
                row.ask_confirmation(False)
        self._row_action(name, "deleting", self.client.delete_workspace, f"Deleted workspace {name}")

    def open_terminal(self, name: str) -> None:
        row = self.rows.get(name)

        def done(terminal: dict) -> None:
            if row is not None:
                with self._ui:
                    row.link.value = terminal_link_html(self.client, terminal, row.ws)

        self._bg.submit(self.client.create_terminal, name, done=done)

    # -- internals -----------------------------------------------------------------------

    def _row_action(self, name: str, busy: str, call: Callable[[str], Any], note: str) -> None:
        row = self.rows.get(name)
        if row is not None:
            with self._ui:
                row.busy = busy
                row.update(None)

        def finished(_=None) -> None:
            if row is not None:
                with self._ui:
                    row.busy = ""
                    row.update(None)
            self.refresh()

        self._bg.submit(call, name, done=lambda _: (self.show_note(note), finished()), failed=finished)

    def _apply(self, workspaces: list[dict], ticket: int | None = None) -> None:
        with self._ui:
            if ticket is not None and not self._fresh("list", ticket):
                return  # a newer list is shown already
            self.workspaces = workspaces
            seen = set()
            for ws in workspaces:
                name = str(ws.get("name"))
                seen.add(name)
                row = self.rows.get(name)
                if row is None:
                    row = self.rows[name] = _Row(self, name)
                row.update(ws)
            for name in list(self.rows):
                if name not in seen:
                    self.rows.pop(name).box.close()
            self.table.children = [self.rows[n].box for n in sorted(self.rows)]
            self.empty.value = note("No workspaces yet; create one below.") if not self.rows else ""

    def _show_info(self, info: dict) -> None:
        self.info = info
        with self._ui:
            self.banner.value = engine_banner(info)

    def _on_event(self, event: dict) -> None:
        kind = str(event.get("type") or "")
        if kind == "workspace.progress":
            row = self.rows.get(str(event.get("workspace")))
            message = (event.get("data") or {}).get("message")
            if row is not None and message:
                with self._ui:
                    row.link.value = f'<span style="{NOTE_STYLE}">{escape(message)}</span>'
        elif kind.startswith("workspace."):
            self.refresh()


def engine_banner(info: dict) -> str:
    """A clear word when the server has no Docker engine (Binder), else nothing."""
    engine = info.get("engine") or {}
    if engine.get("reachable", True):
        image = info.get("image") or {}
        if image and not image.get("present", True):
            return (f'<div style="color:#9a6700">The workspace image {escape(image.get("tag"))} is not built '
                    "yet: run <code>perry build</code> (or <code>%perry build</code>) before creating workspaces.</div>")
        return ""
    failing = [c for c in info.get("checks") or [] if not c.get("ok")]
    details = "".join(f"<li>{escape(c.get('name'))}: {escape(c.get('message'))}"
                      + (f" (fix: {escape(c.get('fix'))})" if c.get("fix") else "") + "</li>" for c in failing)
    return (f'<div class="perry-no-engine" style="border:1px solid #cf222e;padding:6px;{ERROR_STYLE}">'
            f"<b>No Docker engine is reachable from this Perry server</b>"
            f" ({escape(engine.get('error') or engine.get('address') or 'unknown address')}): workspaces cannot be "
            "created or started here. Everything else (the API, these widgets, the %perry magics) works; on "
            "Binder this is expected, as Binder runs no Docker engine."
            + (f"<ul>{details}</ul>" if details else "") + "</div>")


# -- SessionViewer ---------------------------------------------------------------------

class SessionViewer(_PerryWidget):
    """The agent sessions of one workspace: read one, continue it, dispatch a task and watch it."""

    def __init__(self, workspace: str, client: PerryClient | None = None, live: str | None = "events",
                 interval: float = 5.0, limit: int = 50, **kwargs: Any):
        super().__init__(**kwargs)
        self._setup(client)
        self.add_class("perry-session-viewer")
        self.workspace = workspace
        self.limit = limit
        self.sessions: list[dict] = []
        self.conversation: dict = {}
        self.task: dict = {}
        self.reply: dict = {}
        self.title = _html(f"<b>Agent sessions in {escape(workspace)}</b>")
        self.session_picker = W.Dropdown(options=[], description="session", layout=W.Layout(width="520px"))
        self.session_picker.observe(self._picked, names="value")
        self.refresh_button = _button("", "Reload the sessions", icon="refresh", width="36px")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.messages = _html(max_height="420px", overflow="auto", border="1px solid #d0d7de", padding="4px")
        self.text_input = W.Textarea(placeholder="continue the conversation…", layout=W.Layout(width="520px"))
        self.send_button = _button("send", "Send the message and wait for the agent's reply",
                                   style="primary", icon="paper-plane")
        self.send_button.on_click(lambda _: self.send(self.text_input.value))
        self.prompt_input = W.Textarea(placeholder="a task for an agent…", layout=W.Layout(width="520px"))
        self.agent_picker = W.Dropdown(options=list(agent_registry.NAMES), value=agent_registry.DEFAULT, description="agent",
                                       layout=W.Layout(width="200px"))
        self.continue_box = W.Checkbox(value=False, description="in the selected session", indent=False)
        self.dispatch_button = _button("dispatch", "Hand the task to the agent", style="warning", icon="rocket")
        self.dispatch_button.on_click(lambda _: self.dispatch(self.prompt_input.value, self.agent_picker.value,
                                                              continue_session=self.continue_box.value))
        self.task_view = _html()
        self.task_view.add_class("perry-task-view")
        self.children = [
            W.HBox([self.title, self.refresh_button]), self.message,
            self.session_picker, self.messages,
            W.HBox([self.text_input, self.send_button]),
            _html("<b>Dispatch a task</b>"),
            W.HBox([self.prompt_input, W.VBox([self.agent_picker, self.continue_box, self.dispatch_button])]),
            self.task_view,
        ]
        self._watching: set[str] = set()
        self.refresh()
        self._live = _Live(self.client, workspace, self._on_event, self.refresh, self._bg.closed, interval,
                           mode=live) if live in ("events", "poll") else None

    @property
    def session_id(self) -> str | None:
        return self.session_picker.value or None

    # -- actions ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the list of sessions (and the selected conversation)."""
        def load():
            ticket = self._ticket("sessions")
            return ticket, self.client.list_sessions(self.workspace)

        self._bg.submit(load, done=lambda answer: self._apply_sessions(answer[1], answer[0]))

    def show(self, session_id: str) -> None:
        """Select a session and load its messages."""
        with self._ui:
            if session_id in [v for _, v in self.session_picker.options]:
                if self.session_picker.value != session_id:
                    self.session_picker.value = session_id  # _picked loads it
                    return
        self._load(session_id)

    def send(self, text: str) -> None:
        text = (text or "").strip()
        session_id = self.session_id
        if not session_id:
            self.show_error("pick a session to continue first")
            return
        if not text:
            self.show_error("write a message first")
            return
        self.show_note(f"Waiting for the agent in {self.workspace}…")
        with self._ui:
            self.send_button.disabled = True

        def done(reply: dict) -> None:
            self.reply = reply
            with self._ui:
                self.text_input.value = ""
            self.show_note("")
            self._load(session_id)

        def finished(_=None) -> None:
            with self._ui:
                self.send_button.disabled = False

        self._bg.submit(self.client.send_message, self.workspace, session_id, text,
                        done=lambda r: (done(r), finished()), failed=finished)

    def dispatch(self, prompt: str, agent: str = agent_registry.DEFAULT, continue_session: bool = False,
                 model: str | None = None) -> None:
        prompt = (prompt or "").strip()
        if not prompt:
            self.show_error("write the task's prompt first")
            return
        session_id = self.session_id if continue_session else None
        if continue_session and not session_id:
            self.show_error("pick a session to continue first")
            return
        with self._ui:
            self.dispatch_button.disabled = True

        def done(task: dict) -> None:
            with self._ui:
                self.prompt_input.value = ""
            self._show_task(task)
            self.watch_task(task["id"])

        def finished(_=None) -> None:
            with self._ui:
                self.dispatch_button.disabled = False

        self._bg.submit(lambda: self.client.dispatch(self.workspace, prompt, agent=agent, session_id=session_id,
                                                     model=model),
                        done=lambda t: (done(t), finished()), failed=finished)

    def watch_task(self, task_id: str, interval: float = 1.0) -> None:
        """Follow a task until it ends, in the background."""
        if task_id in self._watching:
            return
        self._watching.add(task_id)

        def follow() -> dict:
            try:
                task = self.client.get_task(self.workspace, task_id)
                self._show_task(task)
                while task.get("status") not in present.FINAL_TASK_STATES and not self._bg.closed.wait(interval):
                    task = self.client.get_task(self.workspace, task_id)
                    self._show_task(task)
                return task
            finally:
                self._watching.discard(task_id)

        def ended(task: dict) -> None:
            if task.get("sessionId"):
                self.refresh()

        self._bg.submit(follow, done=ended)

    # -- internals -----------------------------------------------------------------------

    def _apply_sessions(self, sessions: list[dict], ticket: int | None = None) -> None:
        with self._ui:
            if ticket is not None and not self._fresh("sessions", ticket):
                return
            self.sessions = sessions
            options = [(present.session_label(s), str(s.get("sessionId"))) for s in sessions]
            current = self.session_picker.value
            values = [v for _, v in options]
            self._quiet_picker = True  # new options reset the value: one load below, not three
            try:
                self.session_picker.options = options
                self.session_picker.value = current if current in values else (values[0] if values else None)
            finally:
                self._quiet_picker = False
            selected = self.session_picker.value
            if not sessions:
                self.messages.value = note(f"No agent sessions in {self.workspace} yet.")
        if selected:
            self._load(selected)  # also for the same session: its messages may have changed

    def _picked(self, change: dict) -> None:
        if change.get("new") and not getattr(self, "_quiet_picker", False):
            self._load(change["new"])

    def _load(self, session_id: str) -> None:
        def fetch() -> tuple[int, dict]:
            ticket = self._ticket("conversation")
            session = self.client.get_session(self.workspace, session_id)
            total = session.get("messageCount") or 0
            page = self.client.session_messages(self.workspace, session_id, limit=self.limit,
                                                offset=max(0, total - self.limit))
            return ticket, {"session": session, **page}

        def done(answer: tuple[int, dict]) -> None:
            ticket, conversation = answer
            with self._ui:
                if self.session_id not in (None, session_id) or not self._fresh("conversation", ticket):
                    return  # another session was picked meanwhile, or a newer page is shown
                self.conversation = conversation
                self.messages.value = html(present.conversation(conversation))

        self._bg.submit(fetch, done=done)

    def _show_task(self, task: dict) -> None:
        with self._ui:
            self.task = task
            self.task_view.value = html(present.task(task))

    def _on_event(self, event: dict) -> None:
        kind = str(event.get("type") or "")
        if kind in ("session.created", "session.updated"):
            self.refresh()
        elif kind in ("task.created", "task.updated"):
            task = event.get("data") or {}
            if task.get("id") and task.get("id") == self.task.get("id"):
                self._show_task(task)


# -- ChangesViewer ---------------------------------------------------------------------

def _counted(f: dict) -> str:
    if f.get("binary"):
        return f"{f.get('path')}  (binary)"
    return f"{f.get('path')}  +{f.get('added') or 0} -{f.get('removed') or 0}"


class ChangesViewer(_PerryWidget):
    """What changed in a workspace's project: files with +/- lines and a file's coloured diff,
    read again when a task there ends (the ``changes.updated`` event)."""

    ALL = ""  # the picker's value for the whole diff

    def __init__(self, workspace: str, client: PerryClient | None = None, live: str | None = "events",
                 interval: float = 5.0, dir: str | None = None, **kwargs: Any):
        """``dir``: the repository's directory under the workspace's home (default: its project)."""
        super().__init__(**kwargs)
        self._setup(client)
        self.add_class("perry-changes-viewer")
        self.workspace = workspace
        self.dir = dir
        self.changes: dict = {}
        self.diff: dict = {}
        self.title = _html(f"<b>Changes in {escape(workspace)}</b>")
        self.refresh_button = _button("", "Read the changes again", icon="refresh", width="36px")
        self.refresh_button.on_click(lambda _: self.refresh())
        self.summary = _html()
        self.file_picker = W.Dropdown(options=[("all files", self.ALL)], value=self.ALL, description="diff",
                                      layout=W.Layout(width="520px"))
        self.file_picker.observe(lambda change: self.show_diff(change["new"] or None), names="value")
        self.diff_view = _html(max_height="420px", overflow="auto", border="1px solid #d0d7de", padding="4px")
        self.diff_view.add_class("perry-diff-view")
        self.children = [W.HBox([self.title, self.refresh_button]), self.message, self.summary,
                         self.file_picker, self.diff_view]
        self.refresh()
        self._live = _Live(self.client, workspace, self._on_event, self.refresh, self._bg.closed, interval,
                           mode=live) if live in ("events", "poll") else None

    def refresh(self) -> None:
        """Read the project's state again, then the diff shown."""
        def load():
            ticket = self._ticket("changes")
            return ticket, self.client.changes(self.workspace, dir=self.dir)

        self._bg.submit(load, done=lambda answer: self._apply_changes(answer[1], answer[0]))

    def show_diff(self, file: str | None = None) -> None:
        """Show the diff of ``file`` (a path from the list), or of every file."""
        def load():
            ticket = self._ticket("diff")
            return ticket, self.client.diff(self.workspace, file=file, dir=self.dir)

        self._bg.submit(load, done=lambda answer: self._apply_diff(answer[1], answer[0]))

    def _apply_changes(self, data: dict, ticket: int) -> None:
        with self._ui:
            if not self._fresh("changes", ticket):
                return
            self.changes = data
            self.summary.value = html(present.changes(data, self.workspace))
            options = [("all files", self.ALL)] + [(_counted(f), str(f.get("path")))
                                                   for f in data.get("files") or []]
            shown = self.file_picker.value if self.file_picker.value in [v for _, v in options] else self.ALL
            if list(self.file_picker.options) != options:
                self.file_picker.options = options
            self.file_picker.value = shown
        self.show_diff(shown or None)

    def _apply_diff(self, data: dict, ticket: int) -> None:
        with self._ui:
            if not self._fresh("diff", ticket):
                return
            self.diff = data
            self.diff_view.value = html(present.diff(data))

    def _on_event(self, event: dict) -> None:
        if event.get("type") == "changes.updated" and event.get("workspace") in (None, self.workspace):
            self.refresh()


__all__ = ["WorkspaceManager", "SessionViewer", "ChangesViewer", "open_events", "engine_banner"]
