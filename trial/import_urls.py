from django.urls import path

from . import import_views

app_name = "imports"
urlpatterns = [path("<slug:code>/", import_views.upload, name="upload")]
