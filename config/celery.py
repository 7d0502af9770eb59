"""The Celery app. Workers for drafts run with `-Q gpu`; they load the model once per process."""
import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("cxr_trial")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
