FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY worker worker
COPY producers producers
COPY sandbox sandbox
COPY migrations migrations
RUN pip install --no-cache-dir .
USER nobody
ENTRYPOINT ["mailup-jobs"]
