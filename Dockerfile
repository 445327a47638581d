FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scrm scrm
COPY wecom wecom
COPY tasks tasks
RUN pip install --no-cache-dir .
COPY . .
RUN DEBUG=true python manage.py collectstatic --noinput -v 0
EXPOSE 8000
CMD ["gunicorn", "scrm.wsgi:application", "-c", "gunicorn.conf.py"]
