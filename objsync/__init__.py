"""objsync: keep a local folder, such as Airflow's DAG folder, identical to an S3 prefix."""

__version__ = "0.2.0"
