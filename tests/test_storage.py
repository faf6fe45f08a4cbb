"""Storage backends: `file://` and `s3://` (against moto's S3 server on loopback). A job through the
service on S3 storage, with every worker and the API in its own private temp dir, shares no disk."""

from __future__ import annotations

import boto3
import pytest

from tests.service import Service
from waterz.core.errors import ConfigError
from waterz.service import free_port
from waterz.storage import open_storage
from waterz.video import probe

S3_ENV = {"AWS_ACCESS_KEY_ID": "moto", "AWS_SECRET_ACCESS_KEY": "moto", "AWS_DEFAULT_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client("s3", endpoint_url=endpoint, **_creds()).create_bucket(Bucket="waterz-test")
    yield endpoint
    server.stop()


def _creds() -> dict:
    return {"aws_access_key_id": "moto", "aws_secret_access_key": "moto", "region_name": "us-east-1"}


@pytest.fixture(params=["file", "s3"])
def storage(request, tmp_path, monkeypatch):
    if request.param == "file":
        return open_storage(f"file://{tmp_path / 'store'}")
    endpoint = request.getfixturevalue("s3_endpoint")
    for k, v in {**S3_ENV, "S3_ENDPOINT_URL": endpoint}.items():
        monkeypatch.setenv(k, v)
    return open_storage(f"s3://waterz-test/unit-{tmp_path.name}")


def test_put_get_stream_size_and_delete(storage, tmp_path):
    src = tmp_path / "src.bin"
    payload = bytes(range(256)) * 5000
    src.write_bytes(payload)
    storage.put_file("jobs/a/one.bin", src)
    storage.put_file("jobs/a/two.bin", src)
    storage.put_file("uploads/a/keep.bin", src)
    assert storage.size("jobs/a/one.bin") == len(payload)
    assert storage.size("jobs/a/none.bin") is None
    storage.get_file("jobs/a/one.bin", tmp_path / "back.bin")
    assert (tmp_path / "back.bin").read_bytes() == payload
    assert b"".join(storage.iter_bytes("jobs/a/two.bin", chunk=4096)) == payload
    assert storage.delete_prefix("jobs/a/") == 2
    assert storage.size("jobs/a/one.bin") is None and storage.size("uploads/a/keep.bin") == len(payload)
    with pytest.raises(FileNotFoundError) as err:
        storage.get_file("jobs/a/one.bin", tmp_path / "x")
    assert err.value.filename == "jobs/a/one.bin"  # the key, never a host path


def test_file_storage_keys_stay_inside_the_root(tmp_path):
    storage = open_storage(f"file://{tmp_path / 'store'}")
    with pytest.raises(ValueError):
        storage.size("../outside")


def test_unknown_storage_urls_are_refused_with_a_sentence():
    with pytest.raises(ConfigError, match="not supported"):
        open_storage("ftp://host/dir")
    with pytest.raises(ConfigError, match="names no bucket"):
        open_storage("s3:///prefix")


@pytest.mark.slow
def test_a_job_runs_through_s3_with_no_shared_disk_and_auto_segments(s3_endpoint, clips, tmp_path):
    env = {**S3_ENV, "S3_ENDPOINT_URL": s3_endpoint, "STORAGE_URL": "s3://waterz-test/service",
           "MIN_SEGMENTS": "auto", "MIN_CHUNK_FRAMES": "12"}  # fmt: skip
    service = Service(tmp_path, workers=2, env=env)
    try:
        clip = clips("shake_opaque")  # one mark position all along
        status = service.run_job(clip.path)
        assert status["state"] == "SUCCESS", status.get("error")
        assert status["metadata"]["total_segments"] >= 2  # MIN_SEGMENTS=auto: at least one per online worker
        out = service.download(status, tmp_path / "clean.mp4")
        assert probe(out).frames == clip.spec.frames
        assert all(s["finished_at"] for s in status["metadata"]["segments"])
    finally:
        service.close()
    assert not (tmp_path / "storage").exists()  # nothing went to a local disk
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, **_creds())
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="waterz-test", Prefix="service/").get("Contents", [])]
    assert any(k.startswith("service/results/") for k in keys)
    assert not any(k.startswith("service/jobs/") for k in keys)  # intermediates deleted
