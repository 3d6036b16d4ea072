"""A minimal Django project: a shop whose database and MAILUP_JOBS the tests give through
SHOP_DATABASE_URL and SHOP_MAILUP_JOBS (JSON)."""

import json
import os

from sqlalchemy.engine import make_url


def database(url: str) -> dict[str, object]:
    parts = make_url(url)
    if parts.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.database}
    options = parts.query.get("options")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.database,
        "USER": parts.username,
        "HOST": parts.host,
        "PORT": parts.port or "",
        "OPTIONS": {"options": options} if options else {},
    }


SECRET_KEY = "only-for-the-tests"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
INSTALLED_APPS = ["producers.django", "shop"]
DATABASES = {"default": database(os.environ["SHOP_DATABASE_URL"])}
if "SHOP_MAILUP_JOBS" in os.environ:
    MAILUP_JOBS = json.loads(os.environ["SHOP_MAILUP_JOBS"])
