from django.urls import path

from apps.providers import views

app_name = "providers"

urlpatterns = [
    path("settings/providers/", views.provider_list, name="provider_list"),
    path("settings/providers/<str:provider>/", views.provider_set, name="provider_set"),
    path("settings/providers/<str:provider>/delete/", views.provider_delete, name="provider_delete"),
]
