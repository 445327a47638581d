"""gunicorn settings for production (docker-compose) and the benchmarks.

Threads, because a callback spends most of its wall time waiting for Postgres to flush the inbox row
(the commit WeCom's acknowledgement depends on); a waiting thread costs no CPU and lets others run.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", "3"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "4"))
keepalive = 5
timeout = 30
graceful_timeout = 20
accesslog = None
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "warning")
