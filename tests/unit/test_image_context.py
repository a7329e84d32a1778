"""The image builder's context and cache logic, on the in-memory engine."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from perry_jupyter.core import image as image_mod
from tests.fake_engine import FakeEngine
from perry_jupyter.core.errors import PerryError
from perry_jupyter.core.image import (
    BASE_LABEL,
    CONTEXT_FILES,
    HASH_LABEL,
    IMAGE_DIR,
    ImageBuilder,
)

from ..conftest import IMAGE_TAG

CERT_A = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
CERT_B = b"-----BEGIN CERTIFICATE-----\nBBBB\n-----END CERTIFICATE-----\n"


@pytest.fixture
def ca_dir(tmp_path: Path) -> Path:
    d = tmp_path / "ca"
    d.mkdir()
    return d


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    d = tmp_path / "image"
    shutil.copytree(IMAGE_DIR, d)
    return d


def builder(ca_dir: Path, image_dir: Path | None = None, engine=None, tag: str = IMAGE_TAG, **kwargs) -> ImageBuilder:
    return ImageBuilder(
        engine or FakeEngine(), tag, extra_ca_dir=ca_dir, image_dir=image_dir, **kwargs
    )


def expensive(engine: FakeEngine) -> list[str]:
    return [c for c in engine.calls if c in ("pull", "build", "import_image")]


def test_hash_is_stable(ca_dir: Path):
    (ca_dir / "corp.crt").write_bytes(CERT_A)
    first = builder(ca_dir).context_hash(bootstrap=True)
    assert first == builder(ca_dir).context_hash(bootstrap=True)
    assert len(first) == 64 and int(first, 16) >= 0


def test_hash_changes_with_ca_certificates(ca_dir: Path):
    b = builder(ca_dir)
    empty = b.context_hash(bootstrap=True)
    (ca_dir / "corp.crt").write_bytes(CERT_A)
    one = b.context_hash(bootstrap=True)
    assert one != empty
    (ca_dir / "corp.crt").write_bytes(CERT_B)
    changed = b.context_hash(bootstrap=True)
    assert changed not in (empty, one)
    (ca_dir / "corp.crt").rename(ca_dir / "other.crt")
    assert b.context_hash(bootstrap=True) not in (empty, one, changed)
    (ca_dir / "other.crt").unlink()
    assert b.context_hash(bootstrap=True) == empty


def test_only_crt_files_count(ca_dir: Path):
    b = builder(ca_dir)
    before = b.context_hash(bootstrap=False)
    (ca_dir / "README").write_text("not a certificate")
    (ca_dir / "corp.pem").write_bytes(CERT_A)
    assert b.context_hash(bootstrap=False) == before


def test_missing_ca_dir_is_like_an_empty_one(tmp_path: Path, ca_dir: Path):
    assert builder(tmp_path / "nowhere").context_hash(True) == builder(ca_dir).context_hash(True)
    assert ImageBuilder(FakeEngine(), IMAGE_TAG, extra_ca_dir=None).extra_ca_certs() == []


def test_certificates_in_sub_folders(ca_dir: Path):
    (ca_dir / "corp").mkdir()
    (ca_dir / "corp" / "root.crt").write_bytes(CERT_A)
    (ca_dir / "proxy.crt").write_bytes(CERT_B)
    assert builder(ca_dir).extra_ca_certs() == [("corp_root.crt", CERT_A), ("proxy.crt", CERT_B)]


def test_hash_changes_with_base_and_options(ca_dir: Path):
    bootstrapped = builder(ca_dir).context_hash(bootstrap=True)
    pulled = builder(ca_dir).context_hash(bootstrap=False)
    assert bootstrapped != pulled
    other_base = builder(ca_dir, base_image="debian:bookworm").context_hash(bootstrap=False)
    assert other_base != pulled
    # The bootstrap tag matters to a bootstrapped image, the base image name does not.
    assert builder(ca_dir, bootstrap_tag="x:y").context_hash(True) != bootstrapped
    assert builder(ca_dir, base_image="debian:bookworm").context_hash(True) == bootstrapped
    # Where the image goes and where temp files go do not change what is in it.
    assert builder(ca_dir, tag="other:tag", workdir="/tmp").context_hash(True) == bootstrapped


@pytest.mark.parametrize("name", CONTEXT_FILES)
def test_hash_changes_with_context_files(ca_dir: Path, image_dir: Path, name: str):
    b = builder(ca_dir, image_dir)
    before = b.context_hash(bootstrap=True)
    with open(image_dir / name, "ab") as f:
        f.write(b"\n# changed\n")
    assert b.context_hash(bootstrap=True) != before


def test_write_context(tmp_path: Path, ca_dir: Path):
    (ca_dir / "corp.crt").write_bytes(CERT_A)
    (ca_dir / "notes.txt").write_text("skip me")
    out = tmp_path / "ctx"
    out.mkdir()
    builder(ca_dir).write_context(out)
    for name in CONTEXT_FILES:
        assert (out / name).read_bytes() == (IMAGE_DIR / name).read_bytes()
    assert (out / "entrypoint.sh").stat().st_mode & stat.S_IXUSR
    assert sorted(p.name for p in (out / "extra-ca").iterdir()) == [".keep", "corp.crt"]
    assert (out / "extra-ca" / "corp.crt").read_bytes() == CERT_A


def test_image_files_name_no_mirror_host():
    for name in CONTEXT_FILES:
        text = (IMAGE_DIR / name).read_text()
        assert "debian.org" not in text and "http://" not in text, name
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE" in dockerfile and "FROM ${BASE_IMAGE}" in dockerfile
    assert 'perry.image="workspace"' in dockerfile
    assert (IMAGE_DIR / "extra-ca" / ".keep").exists()


def test_build_events_become_progress():
    events = []
    ImageBuilder.build_event({"stream": "Step 3/20 : RUN apt-get update\n"}, events.append)
    ImageBuilder.build_event({"stream": " ---> Running in abc\n\n"}, events.append)
    ImageBuilder.build_event({"aux": {"ID": "sha256:x"}}, events.append)
    assert events == [
        {"stage": "build", "message": "Step 3/20 : RUN apt-get update", "step": 3, "steps": 20},
        {"stage": "build", "message": " ---> Running in abc"},
    ]
    with pytest.raises(PerryError, match="returned a non-zero code: 100"):
        ImageBuilder.build_event(
            {
                "errorDetail": {"code": 100, "message": "The command returned a non-zero code: 100"},
                "error": "The command returned a non-zero code: 100",
            },
            events.append,
        )


def test_build_returns_at_once_when_up_to_date(ca_dir: Path):
    probe = builder(ca_dir)
    labels = {HASH_LABEL: probe.context_hash(True), BASE_LABEL: "bootstrap:perry-base:bookworm"}
    engine = FakeEngine()
    engine.add_image("perry-workspace:latest", labels)
    events = []
    result = builder(ca_dir, engine=engine).build(progress=events.append)
    assert result["upToDate"] is True and result["present"] is True
    assert result["base"] == "bootstrap:perry-base:bookworm"
    assert [e["stage"] for e in events] == ["check"]
    assert expensive(engine) == []
    # Forcing the other kind of base is not satisfied by this image.
    b = builder(ca_dir, engine=engine)
    assert b._is_current(engine.image("perry-workspace:latest"), True)
    assert not b._is_current(engine.image("perry-workspace:latest"), False)


def test_status_reports_stale_image(ca_dir: Path):
    labels = {HASH_LABEL: "0" * 64, BASE_LABEL: "bootstrap:perry-base:bookworm"}
    engine = FakeEngine()
    engine.add_image("perry-workspace:latest", labels)
    status = builder(ca_dir, engine=engine).status()
    assert status["present"] is True and status["upToDate"] is False
    assert status["hash"] == builder(ca_dir).context_hash(True)
    missing = builder(ca_dir, engine=FakeEngine()).status()
    assert missing["present"] is False and missing["upToDate"] is False and missing["id"] is None


def test_missing_debootstrap_is_a_clear_error(ca_dir: Path, monkeypatch):
    monkeypatch.setattr(image_mod, "_find_debootstrap", lambda: None)
    engine = FakeEngine()
    events = []
    with pytest.raises(PerryError, match="apt-get install debootstrap"):
        builder(ca_dir, engine=engine).build(progress=events.append)
    # It tried to pull the ordinary base first, and built nothing.
    assert expensive(engine) == ["pull"]
    assert "build" not in [e["stage"] for e in events]


def test_forced_pull_failure_does_not_bootstrap(ca_dir: Path, monkeypatch):
    monkeypatch.setattr(image_mod, "_find_debootstrap", lambda: pytest.fail("no bootstrap"))
    with pytest.raises(PerryError, match="no such host"):
        builder(ca_dir, engine=FakeEngine()).build(bootstrap=False)
