from django.urls import path

app_name = "rating"
urlpatterns: list = []
