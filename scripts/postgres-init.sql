-- Siaga keeps its own database beside Airflow's metadata database on the same server.
CREATE DATABASE siaga OWNER airflow;
