"""A member that inflates far beyond the size its manifest entry declares."""

import io
import json
import zipfile

import pytest

from apps.lifecycle import archive as archive_module
from apps.lifecycle.archive import MANIFEST, ArchiveError, archive_verify
from tests.lifecycle.test_archive import archive_of

INFLATED = 64 << 20  # 64 MiB of zeros: ~64 KiB deflated


def with_bomb(data: bytes, name: str) -> bytes:
    """The archive with member `name` replaced by INFLATED zero bytes, while the manifest keeps
    declaring the member's real (small) size, rows and checksum."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as archive, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as new:
        manifest = json.loads(archive.read(MANIFEST))
        for info in archive.infolist():
            if info.filename == MANIFEST:
                continue
            if info.filename == name:
                info = zipfile.ZipInfo(name)
                info.compress_type = zipfile.ZIP_DEFLATED
                with new.open(info, "w", force_zip64=True) as member:
                    chunk = bytes(1 << 20)
                    for _ in range(INFLATED >> 20):
                        member.write(chunk)
            else:
                new.writestr(info.filename, archive.read(info))
        new.writestr(MANIFEST, json.dumps(manifest))
    return out.getvalue()


def test_verification_stops_reading_a_member_once_it_exceeds_its_declared_size(acme, monkeypatch):
    """Verification stops reading a member once it passes its declared size (`archive_damaged`): a
    member of a few hundred bytes may inflate to gigabytes."""
    data, manifest = archive_of(acme)
    name = "reference/django_content_type.ndjson"
    declared = next(m["bytes"] for m in manifest["members"] if m["name"] == name)
    bomb = with_bomb(data, name)
    assert len(bomb) < 2 * len(data) + (1 << 20)

    read = {"bytes": 0}
    original = archive_module._member_read

    def counting(archive, member_name):
        for chunk in original(archive, member_name):
            if member_name == name:
                read["bytes"] += len(chunk)
            yield chunk

    monkeypatch.setattr(archive_module, "_member_read", counting)
    with pytest.raises(ArchiveError) as refused:
        archive_verify(io.BytesIO(bomb))
    assert (refused.value.code, refused.value.member) == ("archive_damaged", name)
    assert read["bytes"] <= declared + archive_module.CHUNK, (
        f"inflated {read['bytes']} bytes of a {declared}-byte member"
    )
