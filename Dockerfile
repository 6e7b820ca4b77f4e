# One image for Docker, docker-compose and a Hugging Face Space (which sets PORT=7860).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PORT=8000 HOST=0.0.0.0 \
    DATA_DIR=/app/data

RUN useradd --uid 1000 --create-home --shell /usr/sbin/nologin gateway
WORKDIR /app

COPY requirements.txt .
RUN pip install -r requirements.txt

COPY app ./app
# The code stays root-owned (read-only for the gateway); DATA_DIR is the one folder uid 1000 writes (file logs,
# relative ANALYTICS_JSONL / INTERACTION_LOG paths). Mount a volume there to keep it.
RUN mkdir -p /app/data && chown 1000:1000 /app/data

USER 1000
EXPOSE 8000
# PORT is read by the settings; GATEWAY_ENV_FILE empty: configuration comes from the environment.
ENV GATEWAY_ENV_FILE=""
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import os,urllib.request;urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\",\"8000\")}/health',timeout=4)"
CMD ["python", "-m", "app"]
