"""Load a DAG folder with Airflow's own DagBag, over and over, each load in a freshly forked process.

Run with the Python of a venv that has apache-airflow. Airflow is imported once, then every load is
forked from that process, as Airflow's DAG processor does, so each one imports the DAG files and
their helper modules afresh. One JSON line per load: {"errors": {path: last line}, "dags": {id: tags}},
or {"crash": "..."} when DagBag itself raised.

    python airflow_loader.py DAG_FOLDER OUT_FILE STOP_FILE   # until STOP_FILE exists
    python airflow_loader.py DAG_FOLDER --once              # one load, printed on stdout
"""

import json
import os
import sys

from objsync.bench.forked import forked  # objsync comes from the checkout, as for Airflow's own processes


def dag_bag():
    """Airflow 3's DagBag (which never loads examples), else Airflow 2's."""
    try:
        from airflow.dag_processing.dagbag import DagBag

        return DagBag
    except ImportError:
        from airflow.models.dagbag import DagBag

        return lambda **kw: DagBag(include_examples=False, **kw)


def load(folder: str) -> dict:
    try:
        bag = dag_bag()(dag_folder=folder, safe_mode=True)
    except Exception as exc:  # what Airflow's walk itself raises, such as "Detected recursive loop"
        return {"crash": f"{type(exc).__name__}: {exc}"}
    return {"errors": {os.path.relpath(path, folder): (text.strip().splitlines() or [""])[-1][:300]
                       for path, text in bag.import_errors.items()},
            "dags": {dag_id: sorted(bag.dags[dag_id].tags) for dag_id in bag.dag_ids}}


def load_forked(folder: str) -> str:
    """`load` in a freshly forked child: each load sees the folder as a new Airflow process would."""
    loaded = forked(load, folder)
    return json.dumps(loaded if loaded is not None else {"crash": "the load process died"})


def main() -> None:
    folder = sys.argv[1]
    if folder not in sys.path:
        sys.path.insert(0, folder)  # Airflow puts the DAG folder on sys.path for the DAGs' own imports
    dag_bag()  # import Airflow once, before forking

    if sys.argv[2] == "--once":
        print(load_forked(folder))
        return
    out, stop = sys.argv[2], sys.argv[3]
    with open(out, "w") as fh:
        while not os.path.exists(stop):
            fh.write(load_forked(folder) + "\n")
            fh.flush()


if __name__ == "__main__":
    main()
