"""/reading/images/<public_id>/...: the viewer's image endpoints (paths kept from when reading served them)."""
from django.urls import path

from . import image_views

app_name = "imaging"
urlpatterns: list = [
    path("<opaque_id:public_id>/meta.json", image_views.ImageMetaView.as_view(), name="image-meta"),
    path("<opaque_id:public_id>/display.png", image_views.image_display, name="image-display"),
    path("<opaque_id:public_id>/full.bin", image_views.image_full, name="image-full"),
]
