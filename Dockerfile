# Images for the production-like stack in docker-compose.yaml.
#
#   docker build -t mlp-airflow:3.3.2 .                      # default target: airflow
#   docker build --target mlflow -t mlp-mlflow:3.17.2 .      # MLflow tracking server
#
# The airflow stage is last on purpose, so a plain `docker build .` gives the Airflow image.

# --- MLflow tracking server: small, no Airflow inside -------------------------------------
FROM python:3.11-slim AS mlflow

ARG MLFLOW_VERSION=3.17.2
RUN pip install --no-cache-dir \
        "mlflow==${MLFLOW_VERSION}" \
        "psycopg2-binary>=2.9,<3" \
        "boto3>=1.34,<2" \
    && useradd --create-home --uid 1000 mlflow

USER mlflow
WORKDIR /home/mlflow
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]

# --- Airflow: scheduler, API server, DAG processor, triggerer, Celery workers --------------
FROM apache/airflow:3.3.2-python3.11 AS airflow

ARG AIRFLOW_VERSION=3.3.2
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

# Fashion-MNIST for the image DAG (Debian's package: idx files under /usr/share/datasets/fashion-mnist).
# Optional: when the base image's Debian lacks it, the DAG falls back to scikit-learn's digits.
USER root
RUN (apt-get update && apt-get install -y --no-install-recommends dataset-fashion-mnist \
        || echo "dataset-fashion-mnist unavailable: the image DAG will use scikit-learn digits") \
    && rm -rf /var/lib/apt/lists/*

USER airflow
COPY --chown=airflow:root requirements.txt /opt/airflow/requirements.txt

# torch first, from the CPU index: resolving it from PyPI would pull the CUDA wheels.
RUN TORCH_PIN="$(grep -E '^torch==' /opt/airflow/requirements.txt | cut -d'#' -f1 | tr -d '[:space:]')" \
    && test -n "${TORCH_PIN}" \
    && pip install --no-cache-dir --index-url "${TORCH_INDEX_URL}" "${TORCH_PIN}"

# The rest; naming apache-airflow keeps pip from moving the image's Airflow version.
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" -r /opt/airflow/requirements.txt

COPY --chown=airflow:root pipelines/ /opt/airflow/pipelines/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/

# `import pipelines` works in every Airflow container (tasks, DAG processor, CLI).
ENV PYTHONPATH=/opt/airflow

WORKDIR /opt/airflow
USER airflow
