"""`manage.py export_tenant` and `import_tenant`: a round trip, and clear refusals that write nothing."""

import io
import json
import uuid
import zipfile

import pytest
from django.core.management import CommandError, call_command
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.audit.verify import audit_verify
from apps.lifecycle.archive import MANIFEST
from apps.tenants.models import Tenant
from tests.conftest import audit_events
from tests.lifecycle.test_archive import members_of, rewritten, world


def export(slug: str, path) -> str:
    out = io.StringIO()
    call_command("export_tenant", slug, str(path), stdout=out)
    return out.getvalue()


def test_it_exports_and_imports_a_workspace(fresh_tenant, db, tmp_path):
    """A workspace of the test's own: its chain holds only what this test signs (acme's is
    shared with tests that sign it with keys of their own)."""
    source = fresh_tenant.slug
    path = tmp_path / "acme.zip"
    said = export(source, path)
    assert f"Exported {source} to {path}" in said
    assert json.loads(zipfile.ZipFile(path).read(MANIFEST))["tenant"]["slug"] == source
    assert not (tmp_path / "acme.zip.part").exists()

    slug = f"r{uuid.uuid4().hex[:10]}"
    out = io.StringIO()
    call_command("import_tenant", str(path), "--slug", slug, "--name", "Acme restored", stdout=out)
    assert f"as {slug} (“Acme restored”)" in out.getvalue()
    new = Tenant.objects.get(slug=slug)
    assert new.name == "Acme restored"
    with schema_context(new.schema_name):
        emails = sorted(User.objects.values_list("email", flat=True))
    with schema_context(fresh_tenant.schema_name):
        assert emails == sorted(User.objects.values_list("email", flat=True))
    assert audit_verify(new.pk).ok


def test_an_unknown_slug_is_refused_and_no_file_is_written(db, tmp_path):
    path = tmp_path / "nobody.zip"
    with pytest.raises(CommandError, match="There is no workspace 'nobody'"):
        export("nobody", path)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_not_overwritten(acme, tmp_path):
    path = tmp_path / "there.zip"
    path.write_bytes(b"keep me")
    with pytest.raises(CommandError, match="already exists"):
        export("acme", path)
    assert path.read_bytes() == b"keep me"


def refused(path, slug: str) -> str:
    existed = Tenant.objects.filter(slug=slug).exists()
    before = world()
    with pytest.raises(CommandError) as error:
        call_command("import_tenant", str(path), "--slug", slug, stdout=io.StringIO())
    assert world() == before
    assert Tenant.objects.filter(slug=slug).exists() == existed
    message = str(error.value)
    assert message.startswith(str(path)) and "Nothing was imported" in message
    return message


def test_bad_archives_and_slugs_are_refused_naming_the_file_and_member(acme, tmp_path):
    good = tmp_path / "acme.zip"
    export("acme", good)
    data = good.read_bytes()
    slug = f"r{uuid.uuid4().hex[:10]}"

    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(data[: len(data) // 3])
    assert "[archive_truncated]" in refused(truncated, slug)

    damaged = tmp_path / "damaged.zip"
    offset, size = next((o, s) for name, o, s in members_of(data) if name == "schema/accounts_user.ndjson")
    flipped = bytearray(data)
    flipped[offset + size // 2] ^= 0xFF
    damaged.write_bytes(bytes(flipped))
    message = refused(damaged, slug)
    assert "(member schema/accounts_user.ndjson)" in message and "[archive_damaged]" in message

    newer = tmp_path / "newer.zip"
    newer.write_bytes(rewritten(data, lambda m: m.update(format_version=99)))
    assert f"(member {MANIFEST})" in refused(newer, slug) and "format version 99" in refused(newer, slug)

    assert "[slug_taken]" in refused(good, "globex")
    assert "[slug_invalid]" in refused(good, "Not A Slug")
    assert "[archive_unreadable]" in refused(tmp_path / "missing.zip", slug)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_both_commands_draw_a_progress_bar_and_elsewhere_none(fresh_tenant, db, tmp_path):
    path, terminal, pipe = tmp_path / "bar.zip", Terminal(), io.StringIO()
    call_command("export_tenant", fresh_tenant.slug, str(path), stdout=io.StringIO(), stderr=terminal)
    assert f"Exporting {fresh_tenant.slug}: 100%" in terminal.getvalue() and " rows/s" in terminal.getvalue()
    slug = f"r{uuid.uuid4().hex[:10]}"
    call_command("import_tenant", str(path), "--slug", slug, stdout=io.StringIO(), stderr=pipe)
    assert pipe.getvalue() == ""  # not a terminal (a log, a pipe): no bar


def test_the_export_command_never_overwrites_a_file_that_appears_while_it_exports(acme, tmp_path, monkeypatch):
    """docs/export.md: FILE is never overwritten, also by one written there during the export
    (another operator's export to the same name, finished first): it was replaced at the end."""
    import apps.lifecycle.management.commands.export_tenant as export_command

    path = tmp_path / "acme.zip"
    real_export = export_command.tenant_export

    def export_while_another_writes(tenant, out, **kwargs):
        manifest = real_export(tenant, out, **kwargs)
        path.write_bytes(b"another archive, finished first")
        return manifest

    monkeypatch.setattr(export_command, "tenant_export", export_while_another_writes)
    with pytest.raises(CommandError, match="appeared while exporting"):
        call_command("export_tenant", "acme", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert path.read_bytes() == b"another archive, finished first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.zip"]  # its part file gone


def test_the_export_command_leaves_a_part_file_it_did_not_make(acme, tmp_path):
    """FILE.part, another export to FILE under way (or anyone's file), was deleted by the error
    handler of the `open("xb")` it made fail: each export writes a part file of its own."""
    path, other = tmp_path / "acme.zip", tmp_path / "acme.zip.part"
    other.write_bytes(b"another export's archive being written")
    call_command("export_tenant", "acme", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert path.stat().st_size > 0
    assert other.read_bytes() == b"another export's archive being written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.zip", "acme.zip.part"]


def test_the_export_command_records_the_export_once_its_archive_is_in_place(acme, tmp_path):
    """`tenant.exported` went into the workspace's chain before the archive was put in place, so
    an export whose FILE could not be written (a file, or a dangling link, appeared there) was in
    the trail as exported. Now both chains record it once the archive is there, and only then."""
    path = tmp_path / "acme.zip"
    path.symlink_to(tmp_path / "nowhere")  # appeared meanwhile; `exists()` does not see a dangling link
    chains = ("acme", "public")
    before = [len(audit_events(chain, action="tenant.exported")) for chain in chains]
    with pytest.raises(CommandError, match="appeared while exporting"):
        call_command("export_tenant", "acme", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["acme.zip"] and not (tmp_path / "nowhere").exists()
    assert [len(audit_events(chain, action="tenant.exported")) for chain in chains] == before

    path.unlink()
    call_command("export_tenant", "acme", str(path), stdout=io.StringIO(), stderr=io.StringIO())
    assert [len(audit_events(chain, action="tenant.exported")) for chain in chains] == [n + 1 for n in before]
