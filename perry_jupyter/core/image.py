"""Builds the workspace image (perry_jupyter/image) through the engine gateway.

The base is `debian:bookworm-slim` when the engine has it or can pull it; where nothing can
be pulled, a Debian base is made with `debootstrap` and `docker import`. The image carries a
label with a hash of everything that went into it, so asking for the image again costs one
engine call when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any, Callable

from perry_worker import agents as agent_registry

from .engine import DockerError, Engine
from .errors import EngineUnavailable, InvalidInput, PerryError

Progress = Callable[[dict], None]

IMAGE_DIR = Path(__file__).resolve().parent.parent / "image"
# Files of the build context, besides extra-ca/ (filled from the host).
CONTEXT_FILES = ("Dockerfile", "entrypoint.sh", "sshd_config", "perry-worker")

HASH_LABEL = "perry.context-hash"
BASE_LABEL = "perry.base"  # "image:<name>" or "bootstrap:<tag>": what the image was built on
IMAGE_LABEL = "perry.image"
AGENTS_LABEL = "perry.agents"  # the coding agents' CLIs installed, space-separated


SUITE = "bookworm"
VARIANT = "minbase"
# Bump when the build changes in a way the hashed files do not show.
BUILD_SCHEME = "1"

_STEP = re.compile(r"^Step (\d+)/(\d+)\s*:")


def _nothing(event: dict) -> None:
    pass


class ImageBuilder:
    """Builds and reports on the workspace image. Knows nothing of HTTP or Jupyter."""

    def __init__(
        self,
        engine: Engine,
        tag: str,
        *,
        base_image: str = "debian:bookworm-slim",
        bootstrap_tag: str = "perry-base:bookworm",
        extra_ca_dir: str | os.PathLike | None = "/usr/local/share/ca-certificates",
        workdir: str | os.PathLike | None = None,
        image_dir: str | os.PathLike | None = None,
        agents: tuple[str, ...] | list[str] = agent_registry.IMAGE_DEFAULT,
    ) -> None:
        unknown = agent_registry.unknown(agents)
        if unknown:
            raise InvalidInput(f"unknown agent(s) {', '.join(unknown)}; known: {', '.join(agent_registry.NAMES)}")
        self.agents = agent_registry.canonical(agents)
        self.engine = engine
        self.tag = tag
        self.base_image = base_image
        self.bootstrap_tag = bootstrap_tag
        self.extra_ca_dir = Path(extra_ca_dir) if extra_ca_dir else None
        self.workdir = str(workdir) if workdir else None
        self.image_dir = Path(image_dir) if image_dir else IMAGE_DIR
        # One build at a time per builder: two requests must not race on the same tag.
        self._lock = threading.Lock()

    # --- what goes into the image ---------------------------------------------------------

    def extra_ca_certs(self) -> list[tuple[str, bytes]]:
        """The host's extra CA certificates as (file name in the context, content), sorted.

        Certificates in sub-folders get their folder in the name (`corp_root.crt`), as
        update-ca-certificates also reads sub-folders.
        """
        found: list[tuple[str, bytes]] = []
        root = self.extra_ca_dir
        if root is None or not root.is_dir():
            return found
        for path in sorted(root.rglob("*.crt")):
            try:
                if not path.is_file():
                    continue
                data = path.read_bytes()
            except OSError:
                continue  # an unreadable certificate is skipped, not fatal
            name = "_".join(path.relative_to(root).parts)
            found.append((name, data))
        return found

    def _base_key(self, bootstrap: bool) -> str:
        return f"bootstrap:{self.bootstrap_tag}" if bootstrap else f"image:{self.base_image}"

    def context_hash(self, bootstrap: bool | None = None) -> str:
        """sha256 over the Dockerfile, entrypoint, extra CA certificates, base and options.

        `bootstrap`: True for a bootstrapped base, False for `base_image`, None for the base
        the present image was built on (or, with no image, the one a build would likely use).
        """
        if bootstrap is None:
            bootstrap = self._likely_bootstrap()
        h = hashlib.sha256()

        def add(kind: str, name: str, data: bytes) -> None:
            for part in (kind.encode(), name.encode(), data):
                h.update(len(part).to_bytes(8, "big"))
                h.update(part)

        add("scheme", "", BUILD_SCHEME.encode())
        for name in CONTEXT_FILES:
            add("file", name, (self.image_dir / name).read_bytes())
        for name, data in self.extra_ca_certs():
            add("ca", name, data)
        options = {"base": self._base_key(bootstrap), "suite": SUITE, "variant": VARIANT,
                   "agents": list(self.agents)}
        add("options", "", json.dumps(options, sort_keys=True).encode())
        return h.hexdigest()

    def _likely_bootstrap(self) -> bool:
        image = self._get_image(self.tag)
        if image is not None:
            base = image["labels"].get(BASE_LABEL, "")
            if base.startswith("bootstrap:"):
                return True
            if base.startswith("image:"):
                return False
        return self._get_image(self.base_image) is None

    # --- status ---------------------------------------------------------------------------

    def _get_image(self, name: str) -> dict[str, Any] | None:
        return self.engine.image(name)

    def status(self, _image: dict[str, Any] | None = None) -> dict:
        """{"tag", "present", "upToDate", "id", "created", "hash", "base"}."""
        image = _image if _image is not None else self._get_image(self.tag)
        if image is None:
            return {
                "tag": self.tag,
                "present": False,
                "upToDate": False,
                "id": None,
                "created": None,
                "hash": self.context_hash(self._get_image(self.base_image) is None),
                "base": None,
                "agents": [],
            }
        labels = image["labels"]
        base = labels.get(BASE_LABEL)
        bootstrap = base.startswith("bootstrap:") if base else self._likely_bootstrap()
        current = self.context_hash(bootstrap)
        return {
            "tag": self.tag,
            "present": True,
            "upToDate": labels.get(HASH_LABEL) == current,
            "id": image["id"],
            "created": image["created"],
            "hash": current,
            "base": base,
            "agents": labels.get(AGENTS_LABEL, "").split(),
        }

    # --- build ----------------------------------------------------------------------------

    def build(
        self,
        *,
        bootstrap: bool | None = None,
        no_cache: bool = False,
        progress: Progress = _nothing,
    ) -> dict:
        """Build the image unless an up-to-date one is there; return status().

        bootstrap: None picks `base_image` when it is local or can be pulled, else a
        debootstrapped base; True always uses the bootstrapped base; False always
        `base_image` (pulled if missing). no_cache rebuilds everything, the bootstrapped
        base included.
        """
        with self._lock:
            return self._build(bootstrap=bootstrap, no_cache=no_cache, progress=progress)

    def _build(self, *, bootstrap: bool | None, no_cache: bool, progress: Progress) -> dict:
        progress({"stage": "check", "message": f"checking image {self.tag}"})
        if not no_cache:
            image = self._get_image(self.tag)
            if image is not None and self._is_current(image, bootstrap):
                return self.status(image)

        base, use_bootstrap = self._resolve_base(bootstrap, no_cache, progress)
        if use_bootstrap:
            self._ensure_bootstrap_base(no_cache=no_cache, progress=progress)
        context_hash = self.context_hash(use_bootstrap)
        previous = self._get_image(self.tag)
        self._docker_build(base, use_bootstrap, context_hash, no_cache, progress)
        result = self.status()
        if previous is not None and previous["id"] != result["id"]:
            self._remove_superseded(previous["id"])
        progress({"stage": "done", "message": f"built {self.tag} ({_short(result['id'])})"})
        return result

    def _is_current(self, image: dict[str, Any], bootstrap: bool | None) -> bool:
        labels = image["labels"]
        base = labels.get(BASE_LABEL, "")
        built_bootstrap = base.startswith("bootstrap:")
        if not base or (bootstrap is not None and bootstrap != built_bootstrap):
            return False
        return labels.get(HASH_LABEL) == self.context_hash(built_bootstrap)

    def _resolve_base(
        self, bootstrap: bool | None, no_cache: bool, progress: Progress
    ) -> tuple[str, bool]:
        if bootstrap:
            return self.bootstrap_tag, True
        if self._get_image(self.base_image) is not None:
            return self.base_image, False
        progress({"stage": "base", "message": f"pulling {self.base_image}"})
        try:
            self._pull(self.base_image, progress)
            return self.base_image, False
        except EngineUnavailable:
            raise
        except PerryError as e:
            if bootstrap is False:
                raise
            progress({
                "stage": "base",
                "message": f"cannot pull {self.base_image} ({e.message}); "
                f"using a Debian base made with debootstrap",
            })
            return self.bootstrap_tag, True

    def _pull(self, name: str, progress: Progress) -> None:
        repository, _, tag = name.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = name, "latest"
        try:
            for event in self.engine.pull(repository, tag):
                if event.get("error"):
                    raise PerryError(str(event["error"]), code="pull_failed", status=502)
                status = event.get("status")
                if status and not event.get("progressDetail"):
                    layer = event.get("id")
                    progress({"stage": "base", "message": f"{layer}: {status}" if layer else status})
        except DockerError as e:
            raise PerryError(e.detail.strip(), code="pull_failed", status=502) from e

    # --- the debootstrapped base ----------------------------------------------------------

    def _ensure_bootstrap_base(self, *, no_cache: bool, progress: Progress) -> None:
        if not no_cache and self._get_image(self.bootstrap_tag) is not None:
            progress({"stage": "bootstrap", "message": f"using {self.bootstrap_tag}"})
            return
        debootstrap = _find_debootstrap()
        if debootstrap is None:
            raise PerryError(
                f"cannot pull {self.base_image} and debootstrap is not installed: "
                "run `apt-get install debootstrap` (as root) and build again",
                code="debootstrap_missing",
                status=500,
            )
        if os.geteuid() != 0:
            raise PerryError(
                "making a Debian base with debootstrap needs root; build the image once as "
                f"root, or make {self.base_image} available to the engine",
                code="debootstrap_needs_root",
                status=500,
            )
        tmp = tempfile.mkdtemp(prefix="perry-bootstrap-", dir=self.workdir)
        rootfs = os.path.join(tmp, "rootfs")
        try:
            progress({
                "stage": "bootstrap",
                "message": f"debootstrap --variant={VARIANT} {SUITE} (takes about a minute)",
            })
            self._run_debootstrap(debootstrap, rootfs, progress)
            progress({"stage": "bootstrap", "message": f"importing the base as {self.bootstrap_tag}"})
            self._import_rootfs(rootfs)
        finally:
            _remove_tree(tmp)

    def _run_debootstrap(self, debootstrap: str, rootfs: str, progress: Progress) -> None:
        cmd = [debootstrap, f"--variant={VARIANT}", SUITE, rootfs]  # the default mirror
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                errors="replace",
            )
        except OSError as e:
            raise PerryError(f"cannot run debootstrap: {e}", code="bootstrap_failed") from e
        tail: list[str] = []
        assert proc.stdout is not None
        for line in proc.stdout:
            line = line.rstrip()
            if not line:
                continue
            tail = (tail + [line])[-5:]
            progress({"stage": "bootstrap", "message": line})
        if proc.wait() != 0:
            raise PerryError(
                f"debootstrap failed (exit {proc.returncode}): " + " | ".join(tail),
                code="bootstrap_failed",
            )

    def _import_rootfs(self, rootfs: str) -> None:
        repository, _, tag = self.bootstrap_tag.rpartition(":")
        if not repository or "/" in tag:
            repository, tag = self.bootstrap_tag, "latest"
        tar = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", rootfs, "-cf", "-", "."],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            assert tar.stdout is not None
            result = self.engine.import_image(tar.stdout, repository, tag)
        except DockerError as e:
            tar.kill()
            raise PerryError(f"docker import failed: {e.detail.strip()}", code="bootstrap_failed") from e
        except EngineUnavailable:
            tar.kill()
            raise
        finally:
            if tar.stdout:
                tar.stdout.close()
        err = tar.stderr.read().decode(errors="replace") if tar.stderr else ""
        if tar.wait() != 0:
            raise PerryError(f"tar of the bootstrapped tree failed: {err.strip()}", code="bootstrap_failed")
        for line in result.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("error"):
                raise PerryError(f"docker import failed: {event['error']}", code="bootstrap_failed")
        if self._get_image(self.bootstrap_tag) is None:
            raise PerryError(f"docker import did not create {self.bootstrap_tag}", code="bootstrap_failed")

    # --- docker build ---------------------------------------------------------------------

    def write_context(self, directory: str | os.PathLike) -> None:
        """Write the build context (Dockerfile, entrypoint, extra-ca/) into `directory`."""
        directory = Path(directory)
        for name in CONTEXT_FILES:
            shutil.copyfile(self.image_dir / name, directory / name)
        (directory / "entrypoint.sh").chmod(0o755)
        (directory / "perry-worker").chmod(0o755)
        ca = directory / "extra-ca"
        ca.mkdir(exist_ok=True)
        (ca / ".keep").write_bytes(b"")
        for name, data in self.extra_ca_certs():
            (ca / name).write_bytes(data)

    def _docker_build(
        self, base: str, bootstrap: bool, context_hash: str, no_cache: bool, progress: Progress
    ) -> None:
        progress({"stage": "build", "message": f"building {self.tag} from {base}"})
        with tempfile.TemporaryDirectory(prefix="perry-image-", dir=self.workdir) as ctx:
            self.write_context(ctx)
            try:
                stream = self.engine.build(
                    path=ctx,
                    tag=self.tag,
                    no_cache=no_cache,
                    buildargs={"BASE_IMAGE": base,
                               "PERRY_AGENT_PACKAGES": " ".join(agent_registry.AGENTS[a].package for a in self.agents)},
                    labels={
                        AGENTS_LABEL: " ".join(self.agents),
                        HASH_LABEL: context_hash,
                        BASE_LABEL: self._base_key(bootstrap),
                        IMAGE_LABEL: "workspace",
                    },
                )
                for event in stream:
                    self.build_event(event, progress)
            except DockerError as e:
                raise PerryError(f"image build failed: {e.detail.strip()}", code="build_failed") from e

    def _remove_superseded(self, image_id: str) -> None:
        """Drop the image this build replaced, if nothing uses it any more.

        Workspaces made from it keep it alive (the engine refuses with 409); an image
        someone tagged meanwhile is left alone too.
        """
        try:
            image = self.engine.image(image_id)
            if image is None or image["tags"] or image["labels"].get(IMAGE_LABEL) != "workspace":
                return
            self.engine.remove_image(image_id)
        except PerryError:
            pass

    @staticmethod
    def build_event(event: Any, progress: Progress) -> None:
        """One engine build event as progress; PerryError when it is an error."""
        if not isinstance(event, dict):
            return
        if event.get("error") or event.get("errorDetail"):
            detail = event.get("errorDetail") or {}
            message = event.get("error") or detail.get("message") or "unknown error"
            raise PerryError(f"image build failed: {str(message).strip()}", code="build_failed")
        text = event.get("stream")
        if text is None and event.get("status"):
            text = event["status"]
        if not text:
            return
        for line in str(text).splitlines():
            line = line.rstrip()
            if not line.strip():
                continue
            item: dict = {"stage": "build", "message": line}
            m = _STEP.match(line)
            if m:
                item["step"], item["steps"] = int(m.group(1)), int(m.group(2))
            progress(item)


# --- images derived from the workspace image -----------------------------------------------

# A Docker reference as `perry build --tag` and `perry create --image` take it (no digest).
_REFERENCE = re.compile(r"^[a-z0-9]+(?:[._-]+[a-z0-9]+)*(?::[0-9]+)?(?:/[a-z0-9]+(?:[._-]+[a-z0-9]+)*)*"
                        r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?$")


def validate_reference(ref: Any, what: str = "image") -> str:
    if not isinstance(ref, str) or not _REFERENCE.fullmatch(ref) or len(ref) > 255:
        raise InvalidInput(f"{what} must be an image name such as my-workspace:1 (lowercase name, optional :tag), "
                           f"not {str(ref)[:80]!r}")
    return ref


def derives_from_workspace(image: dict[str, Any]) -> bool:
    """Whether an image is Perry's workspace image or built FROM it: images inherit their base's
    labels, and Perry's carries IMAGE_LABEL (its entrypoint, sshd, worker and user are what a
    workspace needs)."""
    return IMAGE_LABEL in (image.get("labels") or {})


def not_derived(ref: str, workspace_image: str) -> PerryError:
    return PerryError(f"image {ref} is not built from Perry's workspace image: a workspace needs its "
                      f"entrypoint, sshd, worker and user; start its Dockerfile with `FROM {workspace_image}` "
                      f"(image label {IMAGE_LABEL} missing)", code="not_a_workspace_image", status=422)


def build_derived(engine: Engine, *, tag: str, workspace_image: str, progress: Progress = _nothing,
                  path: str | None = None, dockerfile: str | None = None, context_tar: bytes | None = None,
                  buildargs: dict[str, str] | None = None) -> dict[str, Any]:
    """Build an image FROM the workspace image (a user's Dockerfile, a devcontainer's) as ``tag``;
    ``{tag, id, created, agents}``. One that does not derive from it is refused with a 422 and,
    when the build made the tag, removed again."""
    validate_reference(tag, "tag")
    progress({"stage": "build", "message": f"building {tag}"})
    before = engine.image(tag)
    try:
        for event in engine.build(path=path, tag=tag, dockerfile=dockerfile, context_tar=context_tar,
                                  buildargs=buildargs):
            ImageBuilder.build_event(event, progress)
    except DockerError as e:
        raise PerryError(f"image build failed: {e.detail.strip()}", code="build_failed") from e
    image = engine.image(tag)
    if image is None:
        raise PerryError(f"the build did not create {tag}", code="build_failed")
    if not derives_from_workspace(image):
        if before is None or before["id"] != image["id"]:
            try:
                engine.remove_image(image["id"])
            except PerryError:
                pass
        raise not_derived(tag, workspace_image)
    progress({"stage": "build", "message": f"built {tag} ({_short(image['id'])})"})
    return {"tag": tag, "id": image["id"], "created": image["created"],
            "agents": image["labels"].get(AGENTS_LABEL, "").split()}


# --- helpers ------------------------------------------------------------------------------


def _find_debootstrap() -> str | None:
    found = shutil.which("debootstrap")
    if found:
        return found
    for candidate in ("/usr/sbin/debootstrap", "/sbin/debootstrap"):
        if os.access(candidate, os.X_OK):
            return candidate
    return None


def _remove_tree(path: str) -> None:
    """Remove a bootstrap tree, first unmounting anything a failed debootstrap left in it."""
    real = os.path.realpath(path)
    try:
        with open("/proc/mounts") as f:
            mounts = [line.split()[1].replace("\\040", " ") for line in f if line.strip()]
    except OSError:
        mounts = []
    for mount in sorted(mounts, key=len, reverse=True):
        if mount == real or mount.startswith(real + os.sep):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


def _short(image_id: str | None) -> str:
    if not image_id:
        return "?"
    return image_id.split(":", 1)[-1][:12]
