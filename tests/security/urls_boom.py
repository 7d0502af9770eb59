"""A URLconf for the error-page test: the project's routes plus one view that fails."""
from django.urls import path

from config.urls import urlpatterns as project_urlpatterns


def boom(request):
    raise RuntimeError("boom: internal detail that must not reach the browser")


urlpatterns = [path("__boom__/", boom), *project_urlpatterns]
