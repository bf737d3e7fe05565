"""A one-file Django project on the sessync engine, for tests/test_servers.py (gunicorn
with 4 workers). No database: the sessions live in sessyncd."""
import os
import time

import django
from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="test-only-not-secret",
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware"],
    INSTALLED_APPS=[],
    DATABASES={},
    SESSION_ENGINE="sessync.django",
    SESSYNC_URL=os.environ["SESSYNC_URL"],
)
django.setup()


def health(request):
    return HttpResponse("ok")


def start(request):
    request.session["started"] = True
    return JsonResponse({"pid": os.getpid()})


def hit(request, i):
    request.session.get("started")  # loads the session now
    # Widen the window between this request's load and its save, so that the eight
    # requests overlap; the result must not depend on it.
    time.sleep(0.05)
    n = request.session.incr("count")
    request.session[f"a{i}"] = i
    request.session[f"b{i}"] = f"v{i}"
    return JsonResponse({"pid": os.getpid(), "count": n})


def state(request):
    return JsonResponse(dict(request.session.items()))


urlpatterns = [
    path("health", health),
    path("start", start),
    path("hit/<int:i>", hit),
    path("state", state),
]

from django.core.wsgi import get_wsgi_application  # noqa: E402

application = get_wsgi_application()
