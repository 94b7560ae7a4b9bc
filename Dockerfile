# One image for every process: web (default CMD), worker and beat (docker-compose.yml names them).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# pg_dump and pg_restore for `manage.py backup` / `restore` (Debian bookworm's: PostgreSQL 15,
# the server version docker-compose.yml runs — pg_dump refuses a newer server).
RUN apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, so a code change does not reinstall them. base.txt pins the runtime
# packages and pulls every transitive pin from constraints.txt beside it.
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt

# The code stays owned by root: the app user can read it but not change it. The app user owns
# only the directories it writes to (a fresh volume takes its owner): the Celery signing key,
# metrics, export archives (media) and backups.
COPY . .
# Static files are built into the image (whitenoise serves them); the secret is a placeholder
# that only lets settings load, and nothing here touches the database.
RUN FOUNDRY_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
 && python -m compileall -q foundry apps \
 && useradd --system --uid 10001 --user-group --home-dir /app --no-create-home --shell /usr/sbin/nologin foundry \
 && install -d -o foundry -g foundry -m 0700 /var/lib/foundry/celery-signing /var/lib/foundry/metrics \
    /var/lib/foundry/media /var/lib/foundry/backups

USER foundry
ENV FOUNDRY_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
