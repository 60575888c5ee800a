"""A second example DAG in a sub-folder."""

from datetime import datetime

from airflow import DAG
from airflow.operators.empty import EmptyOperator

with DAG("daily_report", start_date=datetime(2024, 1, 1), schedule="@daily", catchup=False) as dag:
    EmptyOperator(task_id="build") >> EmptyOperator(task_id="publish")
