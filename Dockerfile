# The Airflow image with Siaga's dependencies, pinned by the same constraints file as CI.
FROM apache/airflow:3.3.2-python3.11
COPY --chown=airflow:root pyproject.toml constraints.txt README.md /opt/siaga/
COPY --chown=airflow:root plugins /opt/siaga/plugins
RUN pip install --no-cache-dir -c /opt/siaga/constraints.txt "/opt/siaga"
