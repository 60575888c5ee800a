"""`objsync bench`: seed a synthetic DAG tree, time objsync against its peers, report and tune."""
