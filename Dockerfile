# The image of every mailup-jobs process: `docker run IMAGE worker|beat|flower|migrate|…`.
FROM python:3.11-slim
# Log lines reach `docker logs` as they are written.
ENV PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY worker worker
COPY producers producers
COPY sandbox sandbox
COPY migrations migrations
RUN pip install --no-cache-dir .
# With Redis and PostgreSQL nothing is kept in the container: it needs no home of its own.
USER nobody
ENTRYPOINT ["mailup-jobs"]
