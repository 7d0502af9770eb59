from django.urls import path

app_name = "inference"
urlpatterns: list = []
