# interview-bot: one image for every platform; the command picks it (run --platform discord|slack).
FROM python:3.11.13-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY adapters ./adapters
COPY questions ./questions
# A plain install into a venv: the question bank goes to /opt/venv/share/interview-bot/questions.
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .

FROM python:3.11.13-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /home/bot bot
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    HEALTH_PORT=8080 \
    INTERVIEW_BOT_LOG_FORMAT=json
USER bot
WORKDIR /home/bot
EXPOSE 8080 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/livez', timeout=4)"]
ENTRYPOINT ["interview-bot"]
CMD ["run"]
