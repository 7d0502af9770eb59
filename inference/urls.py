from django.urls import path

from . import views

app_name = "inference"
urlpatterns = [
    path("<slug:trial_code>/", views.drafts_page, name="drafts"),
    path("<slug:trial_code>/drafts/<int:draft_id>/retry/", views.retry, name="retry"),
]
