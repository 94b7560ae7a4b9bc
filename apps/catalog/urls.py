from django.urls import path

from apps.catalog import views

app_name = "catalog"


def _kind_patterns(kind: str, plural: str, views_of_kind: dict) -> list:
    return [
        path(f"{plural}/", views_of_kind["list"], name=f"{kind}_list"),
        path(f"{plural}/<str:name>/", views_of_kind["detail"], name=f"{kind}_detail"),
        path(f"{plural}/<str:name>/diff/", views_of_kind["diff"], name=f"{kind}_diff"),
        path(f"{plural}/<str:name>/rollback/<int:number>/", views_of_kind["rollback"], name=f"{kind}_rollback"),
        # The editor lives outside /domains/ and /agents/ so that no document name can shadow it.
        path(f"catalog/{kind}/new/", views_of_kind["editor"], name=f"{kind}_editor"),
        path(f"catalog/{kind}/validate/", views_of_kind["validate"], name=f"{kind}_validate"),
        path(f"catalog/{kind}/publish/", views_of_kind["publish"], name=f"{kind}_publish"),
    ]


urlpatterns = [
    *_kind_patterns("domain", "domains", views.DOMAIN_VIEWS),
    *_kind_patterns("agent", "agents", views.AGENT_VIEWS),
    path("agents/<str:name>/deploy/<int:number>/", views.agent_deploy_view, name="agent_deploy"),
    path("agents/<str:name>/migrate/", views.agent_migrate_view, name="agent_migrate"),
]
