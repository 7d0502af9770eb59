from django.urls import path

app_name = "reading"
urlpatterns: list = []
