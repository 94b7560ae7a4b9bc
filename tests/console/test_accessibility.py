"""Accessibility of the server-rendered console beyond what axe-core sees (tests/browser/test_accessibility.py
crawls for that): WCAG 2.1 AA points a buyer's VPAT asks about, each guarded on one page and one element.

It guards that help text and errors are shown and tied to their fields (the ids Django's
aria-describedby names), that a refused htmx request is shown, that the member role select saves
only by its button and keeps its id across the row swap, that a run's status and the audit chain's
verdict land in live regions, that the operator console is titled as such, that action columns
have a header, and that the selected version is marked by more than colour.

Pages are rendered with the Django test client as a signed-in member and parsed with the standard
library's HTMLParser.
"""

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from django_tenants.utils import schema_context

from apps.accounts.models import User
from apps.accounts.permissions import Role
from tests.conftest import client_for
from tests.runs.conftest import FINANCE, TRIAGE, deploy
from tests.runs.test_api import make_run

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag, attrs, parent):
        self.tag, self.attrs, self.parent, self.children, self.text, self.tail = tag, dict(attrs), parent, [], "", ""

    def ancestors(self):
        node = self.parent
        while node is not None:
            yield node
            node = node.parent

    def descendants(self):
        for child in self.children:
            yield child
            yield from child.descendants()

    def text_content(self):
        return self.text + "".join(c.text_content() + c.tail for c in self.children)


class Page(HTMLParser):
    """A small DOM: enough to follow ids, labels and ancestors."""

    def __init__(self, html: str):
        super().__init__()
        self.root = Node("#root", {}, None)
        self.current = self.root
        self.nodes: list[Node] = []
        self.feed(html)
        self.ids = {n.attrs["id"]: n for n in self.nodes if "id" in n.attrs}

    def handle_starttag(self, tag, attrs):
        node = Node(tag, attrs, self.current)
        self.current.children.append(node)
        self.nodes.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        if self.current.children:
            self.current.children[-1].tail += data
        else:
            self.current.text += data

    def find(self, tag, **attrs) -> Node:
        found = self.find_all(tag, **attrs)
        assert found, f"no <{tag}> with {attrs} on the page"
        return found[0]

    def find_all(self, tag, **attrs) -> list[Node]:
        attrs = {k.replace("_", "-"): v for k, v in attrs.items()}
        return [n for n in self.nodes if n.tag == tag and all(n.attrs.get(k) == v for k, v in attrs.items())]

    def described_by(self, node: Node) -> str:
        """The text of the elements the node's aria-describedby names (those that exist)."""
        refs = (node.attrs.get("aria-describedby") or "").split()
        return " ".join(self.ids[r].text_content().strip() for r in refs if r in self.ids)

    def dangling_references(self, node: Node) -> list[str]:
        refs = (node.attrs.get("aria-describedby") or "").split()
        return [r for r in refs if r not in self.ids]


def page_of(response) -> Page:
    return Page(response.content.decode())


def in_live_region(node: Node) -> bool:
    return any(
        a.attrs.get("aria-live") in ("polite", "assertive") or a.attrs.get("role") in ("status", "alert", "log")
        for a in [node, *node.ancestors()]
    )


@pytest.fixture
def owner(acme):
    client = client_for(acme, "owner@acme.test")
    client.raise_request_exception = False
    return client


@pytest.fixture
def operator(db):
    client = client_for(None, "operator@platform.test")
    client.raise_request_exception = False
    return client


# --- help text / instructions: WCAG 1.3.1, 3.3.2 -------------------------------------------------

HELP_TEXT_FIELDS = [
    # (host, path, field name, the help text the form defines)
    ("acme", "/runs/new/", "agent", "Deployed agents only"),
    ("acme", "/runs/new/", "input", "What you ask the agent to do."),
    ("acme", "/settings/tokens/", "expires_in", '"30d"'),
    ("acme", "/settings/sso/", "allowed_domains", "One per line"),
    ("acme", "/settings/sso/", "role_map", "VALUE=ROLE"),
    ("acme", "/settings/audit-sinks/", "name", "Lowercase letters"),
    ("acme", "/settings/audit-sinks/", "cursor", "Deliver the events after this sequence number"),
    ("operator", "/", "slug", "Lowercase letters, digits and hyphens."),
    ("operator", "/tenants/import/", "archive", "A workspace archive (.zip)"),
    ("operator", "/tenants/import/", "slug", "lowercase letters, digits and hyphens"),
]


@pytest.mark.parametrize(("host", "path", "field", "help_text"), HELP_TEXT_FIELDS)
def test_form_help_text_is_shown_and_programmatically_associated(request, host, path, field, help_text):
    """WCAG 3.3.2 / 1.3.1: a field's instructions are shown and tied to it. Django 5.2 renders every
    field with help text as `aria-describedby="id_<name>_helptext"`, but the templates print the help
    text (when they print it at all) without that id: the reference points at nothing, so screen
    readers announce no instructions (e.g. the token expiry format, the tenant slug rules)."""
    client = request.getfixturevalue("owner" if host == "acme" else "operator")
    if path == "/runs/new/":  # the form is shown once an agent is deployed
        deploy(request.getfixturevalue("acme"), FINANCE, TRIAGE)
    page = page_of(client.get(path))
    control = next(n for n in page.nodes if n.tag in ("input", "select", "textarea") and n.attrs.get("name") == field)
    assert not page.dangling_references(control), (
        f"{path} <{control.tag} name={field}> has aria-describedby={control.attrs.get('aria-describedby')!r}, "
        "which names no element on the page"
    )
    assert help_text in page.described_by(control), f"{path} {field}: its help text is not its description"


def test_invite_accept_password_rules_are_shown_and_associated(owner, acme):
    """WCAG 3.3.2: the invitation page asks for a new password that Django's password validators
    check (length, not common, not all digits…); the rules are the field's help text. The page
    neither shows them nor resolves the field's aria-describedby (id_new_password1_helptext), so a
    new member learns the rules only by failing them."""
    response = owner.post("/members/add/", {"email": "new@acme.test", "full_name": "New", "role": "viewer"})
    html = response.content.decode() if response.status_code != 302 else owner.get("/members/").content.decode()
    invite = re.search(r"(https?://[^\s\"<]*/invite/[^\s\"<]*)", html).group(1)
    page = page_of(client_for(acme).get(urlsplit(invite).path, follow=True))
    password = page.find("input", name="new_password1")
    assert not page.dangling_references(password), password.attrs.get("aria-describedby")
    assert "characters" in page.described_by(password), "the password rules are not described"


# --- errors tied to their field: WCAG 3.3.1, 1.3.1 -----------------------------------------------


def test_runs_filter_error_is_associated_with_the_status_select(owner):
    """WCAG 3.3.1: /runs/?status=bogus answers 400 with the error listed in a separate <ul>, built
    by hand without the id Django's aria-describedby names (id_status_error). The select is
    aria-invalid but its description points at nothing, so the reason is not announced with it."""
    response = owner.get("/runs/", {"status": "bogus"})
    assert response.status_code == 400
    page = page_of(response)
    select = page.find("select", name="status")
    assert not page.dangling_references(select), select.attrs.get("aria-describedby")
    assert "bogus" in page.described_by(select) or "valid choice" in page.described_by(select)


def test_audit_filter_error_is_associated_with_the_filter_input(owner):
    """WCAG 3.3.1 / 1.3.1: a bad AIP-160 filter on /audit/ answers 400 with a message and a caret,
    but the filter <input> is neither aria-invalid nor described by the message, so a screen reader
    user back in the field hears nothing wrong with it."""
    response = owner.get("/audit/", {"filter": "action = "})
    assert response.status_code == 400
    page = page_of(response)
    box = page.find("input", name="filter")
    assert box.attrs.get("aria-invalid") == "true", "the filter input is not marked invalid"
    assert page.described_by(box), "the filter input is not described by the error"


def test_member_role_change_failure_over_htmx_is_shown(owner, acme):
    """WCAG 3.3.1 (and docs: bad input gets a clear error): the member role <select> posts with htmx
    on change. When the change fails (here: another admin removed the member meanwhile) the view
    answers with a 4xx error page, which htmx 2 does not swap (responseHandling: 4xx -> no swap),
    and the console configures no other handling: nothing is shown or announced and the select keeps
    the role that was not saved."""
    with schema_context(acme.schema_name):
        member = User.objects.create_user("gone@acme.test", "x" * 20, role=Role.VIEWER)
    page = page_of(owner.get("/members/"))
    assert page.find("select", aria_label="Role of gone@acme.test")
    with schema_context(acme.schema_name):
        User.objects.filter(pk=member.pk).delete()

    response = owner.post(
        f"/members/{member.pk}/role/",
        {"role": "developer"},
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET=f"member-{member.pk}",
    )
    config = page.find("meta", name="htmx-config").attrs["content"]
    handled = response.status_code < 400 or "responseHandling" in config or len(page.find_all("script")) > 1
    assert handled, f"htmx drops the {response.status_code} answer: the failure is never shown"


# --- keyboard and change of context: WCAG 3.2.2, 2.4.3 -------------------------------------------


def _role_select(owner, acme):
    with schema_context(acme.schema_name):
        User.objects.create_user("someone@acme.test", "x" * 20, role=Role.VIEWER)
    page = page_of(owner.get("/members/"))
    return page, page.find("select", aria_label="Role of someone@acme.test")


def test_member_role_select_does_not_submit_on_change(owner, acme):
    """WCAG 3.2.2 On Input (failure F36): on /members/ changing the role <select> immediately posts
    the role change (hx-trigger="change"); the only Save button is inside <noscript>. A keyboard
    user arrowing through a closed select (Windows browsers fire change per arrow) grants each role
    in turn, e.g. admin on the way to viewer. A visible Save button should commit the change."""
    _, select = _role_select(owner, acme)
    form = next(a for a in select.ancestors() if a.tag == "form")
    visible_buttons = [
        b for b in form.descendants() if b.tag == "button" and not any(a.tag == "noscript" for a in b.ancestors())
    ]
    assert form.attrs.get("hx-trigger") != "change" or visible_buttons, "the role is saved on every change"


def test_member_role_select_keeps_focus_after_its_row_is_swapped(owner, acme):
    """WCAG 2.4.3 Focus Order: the role change replaces the whole row (hx-swap="outerHTML"). htmx
    restores focus after a swap only to an element with the same id as the focused one; the select
    has no id, so keyboard focus falls to <body> and the user is thrown to the top of the page."""
    _, select = _role_select(owner, acme)
    assert select.attrs.get("id"), "the role select has no id: htmx cannot restore focus to it"


# --- status messages: WCAG 4.1.3 ------------------------------------------------------------------


def test_run_status_changes_are_announced(owner, acme):
    """WCAG 4.1.3 Status Messages: a running run's page polls #run-live every second and swaps it
    (outerHTML) as the run goes queued -> running -> succeeded/failed/waiting_approval. Neither the
    status badge nor any ancestor is a live region (aria-live / role=status), so a screen reader
    user is never told the run finished or now waits for their approval."""
    run = make_run(acme, deploy(acme, FINANCE, TRIAGE))
    page = page_of(owner.get(f"/runs/{run.pk}/"))
    live = page.find("div", id="run-live")
    assert "hx-trigger" in live.attrs  # it polls
    badge = page.find("span", data_testid="run-status")
    assert badge in list(live.descendants())
    announced = in_live_region(live.parent) or (in_live_region(live) and live.attrs.get("hx-swap") != "outerHTML")
    assert announced, "the run's status is not in a live region that survives the swap"


def test_audit_chain_status_is_announced_when_verified(owner):
    """WCAG 4.1.3: /audit/ shows "verifying…" and loads the chain's verdict by htmx (outerHTML swap
    of the badge). The verdict — "Intact" or "BROKEN at #N", the tamper alarm — lands outside any
    live region, so it is never announced to a screen reader user."""
    page = page_of(owner.get("/audit/"))
    badge = page.find("span", hx_trigger="load")
    assert in_live_region(badge.parent), "the chain verdict is swapped in outside a live region"


# --- orientation: WCAG 2.4.2 Page Titled ----------------------------------------------------------


def test_operator_limits_page_is_titled_as_the_operator_console(operator):
    """WCAG 2.4.2 / PRODUCT.md (the bare base domain is the platform operator console): the
    operator's page of acme's limits is titled "Limits of acme · Acme Corporation" and its banner
    says "Acme Corporation" (and the operator "· Viewer"), as if it were acme's own console: the view
    passes the edited tenant as `tenant`, which base.html reads as the workspace being browsed."""
    page = page_of(operator.get("/tenants/acme/limits/"))
    title = page.find("title").text_content().strip()
    scope = page.find("span", **{"class": "scope"}).text_content().strip()
    assert scope == "Platform operator console", f"banner scope {scope!r}"
    assert not title.endswith("Acme Corporation"), f"title {title!r}"


# --- tables and colour: WCAG 1.3.1, 1.4.1 -------------------------------------------------------

EMPTY_HEADER_PAGES = [
    ("acme", "/members/"),
    ("acme", "/settings/tokens/"),
    ("acme", "/settings/providers/"),
    ("acme", "/settings/audit-sinks/"),
    ("operator", "/"),
    ("operator", "/plans/"),
    ("operator", "/prices/"),
]


@pytest.mark.parametrize(("host", "path"), EMPTY_HEADER_PAGES)
def test_action_column_header_has_text(request, host, path):
    """WCAG 1.3.1: the actions column of each table (Revoke, Delete, Edit, Suspend…) has an empty
    <th></th>: screen readers announce its cells with no column name. A visually hidden "Actions"
    label fixes it."""
    client = request.getfixturevalue("owner" if host == "acme" else "operator")
    page = page_of(client.get(path))
    empty = [th for th in page.find_all("th") if not th.text_content().strip() and not th.attrs.get("aria-label")]
    assert not empty, f"{path}: {len(empty)} empty header cell(s)"


def test_selected_version_is_not_marked_by_colour_alone(owner, acme):
    """WCAG 1.4.1 Use of Color: an agent's page marks the version being shown in its versions table
    only by `tr.selected` (a background tint); nothing in the row's text or ARIA (aria-current)
    says which version is selected."""
    agent = deploy(acme, FINANCE, TRIAGE)
    page = page_of(owner.get(f"/agents/{agent.name}/"))
    row = next(n for n in page.find_all("tr") if "selected" in n.attrs.get("class", "").split())
    marked = any(n.attrs.get("aria-current") for n in [row, *row.descendants()]) or "selected" in row.text_content()
    assert marked, "the selected version row is distinguished by colour only"
