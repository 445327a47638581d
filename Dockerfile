# Front-end packages (Chart.js) come from the npm registry and are served by the app itself (no CDN).
FROM node:20-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY scrm scrm
COPY wecom wecom
COPY tasks tasks
RUN pip install --no-cache-dir .
COPY . .
COPY --from=assets /app/node_modules/chart.js/dist node_modules/chart.js/dist
RUN DEBUG=true python manage.py collectstatic --noinput -v 0
EXPOSE 8000
CMD ["gunicorn", "scrm.wsgi:application", "-c", "gunicorn.conf.py"]
