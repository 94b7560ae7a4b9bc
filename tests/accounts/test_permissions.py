from pathlib import Path

from apps.accounts.permissions import MATRIX, Permission, Role

DOC = Path(__file__).resolve().parents[2] / "docs" / "roles.md"


def test_the_documented_matrix_equals_the_enforced_one():
    rows = [line for line in DOC.read_text().splitlines() if line.startswith("| `")]
    header = next(line for line in DOC.read_text().splitlines() if line.startswith("| permission"))
    roles = [cell.strip() for cell in header.strip("|").split("|")[1:]]
    assert roles == [r.value for r in Role]
    documented = {}
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        permission = Permission(cells[0].strip("`"))
        documented[permission] = {Role(r) for r, cell in zip(roles, cells[1:], strict=True) if cell == "yes"}
    enforced = {p: {r for r in Role if p in MATRIX[r]} for p in Permission}
    assert documented == enforced


def test_roles_are_nested_from_viewer_to_owner():
    assert MATRIX[Role.VIEWER] < MATRIX[Role.OPERATOR] < MATRIX[Role.ADMIN] < MATRIX[Role.OWNER]
    assert MATRIX[Role.VIEWER] < MATRIX[Role.DEVELOPER] < MATRIX[Role.ADMIN]
    assert Permission.OWNERS_MANAGE in MATRIX[Role.OWNER] - MATRIX[Role.ADMIN]
