# One image for both process types: the web process (the default command) and the worker
# (`python -m bot worker`). Build: docker build -t refold-execution-bot .

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
# Every wheel the bot needs, built here so the final stage installs offline and carries no build tools.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=3000 \
    DATA_DIR=/home/bot/data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels /wheels/refold_execution_bot-*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin bot
USER 10001
WORKDIR /home/bot
EXPOSE 3000
# The slim image has no curl; Python is there anyway. /healthz is 200 while Redis answers.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '3000') + '/healthz', timeout=2)"]
CMD ["python", "-m", "bot"]
