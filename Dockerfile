FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY requirements/ requirements/
RUN pip install -r requirements/base.txt

COPY . .
RUN FOUNDRY_SECRET_KEY=collectstatic-only python manage.py collectstatic --noinput --verbosity 0 \
 && useradd --system --uid 10001 --home /app foundry

USER foundry
ENV FOUNDRY_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "foundry.wsgi", "--config", "foundry/gunicorn.conf.py"]
