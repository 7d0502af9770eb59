"""The admin site is for superusers only."""
from django.contrib import admin


def _superusers_only(request) -> bool:
    # Coordinators are staff (they may create trials) but work through the app's pages and services, which audit
    # every change; the admin would bypass that, so only superusers get in.
    return request.user.is_active and request.user.is_superuser


admin.site.has_permission = _superusers_only
