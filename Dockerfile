# PromptLab: `docker build -t promptlab .` then `docker run -p 8501:8501 -e OPENAI_API_KEY promptlab`
FROM python:3.11-slim

# Every requirement is a wheel (the offline model's runtime, xllamacpp, included): no compiler in the image.
WORKDIR /app
# The requirements layer is cached as long as requirements.txt does not change.
COPY requirements.txt .
RUN pip install --no-cache-dir --only-binary=:all: -r requirements.txt

RUN useradd --create-home --uid 10001 promptlab
COPY --chown=promptlab:promptlab . .
USER promptlab
# The offline model's weights (SmolLM2-135M, 93 MB) go into the image, so a container needs no network for them.
RUN python -m core model-file /app/models

ENV PROMPTLAB_DB_URL=sqlite:////app/data/promptlab.db \
    PROMPTLAB_DATA_DIR=/app/data \
    PROMPTLAB_MODELS_DIR=/app/models \
    PROMPTLAB_METRICS_PORT=9108
EXPOSE 8501 9108
VOLUME ["/app/data"]

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() == b'ok' else 1)"

CMD ["streamlit", "run", "app.py", "--server.port=8501", "--server.address=0.0.0.0", "--server.headless=true", "--browser.gatherUsageStats=false"]
