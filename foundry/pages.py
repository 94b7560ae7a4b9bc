"""Console lists that grow with a workspace's history are shown a page at a time."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, items: QuerySet, per_page: int = PER_PAGE) -> tuple[Page, str]:
    """The requested page of `items` (`?page=`; out of range or malformed: the nearest page) and
    the request's other query parameters, for the pager's links (templates/console/_pager.html)."""
    page = Paginator(items, per_page).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return page, query.urlencode()
