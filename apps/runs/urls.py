from django.urls import path

from apps.runs import views

app_name = "runs"

urlpatterns = [
    path("runs/", views.run_list, name="run_list"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<str:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<str:run_id>/live/", views.run_live, name="run_live"),
    path("runs/<str:run_id>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("runs/<str:run_id>/decide/", views.run_decide_view, name="run_decide"),
]
