"""Console lists that grow with a workspace's history are shown a page at a time."""

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import HttpRequest

PER_PAGE = 50


def page_of(request: HttpRequest, items: QuerySet | list, per_page: int = PER_PAGE) -> tuple[Page, str]:
    """The requested page of `items` (`?page=`; out of range or malformed: the nearest page) and
    the request's other query parameters, for the pager's links (templates/console/_pager.html)."""
    return Paginator(items, per_page).get_page(request.GET.get("page")), page_query(request)


def page_query(request: HttpRequest, parameter: str = "page") -> str:
    """The request's query parameters but `parameter` (the page's), for the pager's links."""
    query = request.GET.copy()
    query.pop(parameter, None)
    return query.urlencode()
