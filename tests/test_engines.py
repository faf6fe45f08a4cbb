"""`waterz engines` and `GET /api/engines`: every engine, what it needs, whether it runs here, its
licences."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from detector import DETECTORS
from propainter import INPAINTERS
from propainter.weights import PROPAINTER_MODELS, named_weights
from tests.service import Service
from waterz.core.settings import Settings
from waterz.pipeline.engines import CATALOGUE, engines


def _waterz(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "waterz.cli", *args], capture_output=True, text=True, env=env,
                          timeout=120, check=True)  # fmt: skip


def test_every_registered_engine_is_described_and_nothing_else():
    for kind, registry in (("detector", DETECTORS), ("inpainter", INPAINTERS)):
        assert sorted(e.name for e in CATALOGUE if e.kind == kind) == registry.names()


def test_the_listing_says_propainter_s_weights_are_non_commercial_and_marks_the_defaults(tmp_path):
    env = {"WEIGHTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "DETECTOR": "auto", "INPAINTER": "unblend"}
    text = _waterz("engines", env=env).stdout
    block = text.split("  propainter (")[1].split("\n  ")[0:4]
    assert any("non-commercial" in line for line in block), block
    listing = json.loads(_waterz("engines", "--json", env=env).stdout)
    rows = {r["name"]: r for r in listing["inpainters"]}
    assert "non-commercial" in rows["propainter"]["weights_licence"]
    assert rows["propainter"]["available"] is False and "missing" in rows["propainter"]["why"]
    assert [r["name"] for r in listing["inpainters"] if r["default"]] == ["unblend"]
    assert [r["name"] for r in listing["detectors"] if r["default"]] == ["auto"]
    assert rows["telea"]["available"]


def test_listing_the_engines_imports_no_torch(tmp_path):
    """The API process answers `/api/engines` without loading torch (about 470 MB)."""
    code = "import sys; from waterz.pipeline.engines import engines; from waterz.core.settings import Settings; " \
           "engines(Settings()); print('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          env={"WEIGHTS_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}).stdout.strip() == "False"


def test_weights_are_told_present_by_their_files_alone(tmp_path):
    """A file whose content matches the SHA-1 prefix its name carries is there; one that does not
    is damaged; none is missing."""
    content = b"weights"
    digest = hashlib.sha1(content).hexdigest()[:8]
    (tmp_path / f"raft_things-0000-{digest}.pth").write_bytes(content)
    (tmp_path / "propainter_rfc-0000-00000000.pth").write_bytes(content)
    states = named_weights(tmp_path, PROPAINTER_MODELS)
    assert states == {"raft_things": "ok", "propainter_rfc": "checksum mismatch", "propainter": "missing"}
    rows = {r["name"]: r for r in engines(Settings(weights_dir=tmp_path))["inpainters"]}
    assert "propainter missing" in rows["propainter"]["why"] and "raft_things" not in rows["propainter"]["why"]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    svc = Service(tmp_path_factory.mktemp("engines"), workers=1)
    yield svc
    svc.close()


def test_the_api_answers_what_the_command_prints(service):
    answered = service.http.get("/api/engines").raise_for_status().json()
    assert answered == json.loads(_waterz("engines", "--json", env=service.env).stdout)
