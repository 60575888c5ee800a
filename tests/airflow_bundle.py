"""Use a configured Airflow 3 DAG bundle the way Airflow's own processes do; one marked JSON line per step on stdout.

Run with the Python of a venv that has apache-airflow 3, with the bundle configured in
AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST.

    python airflow_bundle.py load NAME [VERSION]   # as a worker: get_bundle(NAME, VERSION), initialize(), parse
    python airflow_bundle.py drive NAME            # as the DAG processor: initialize(), then one refresh()
                                                   # per line read on stdin, until stdin closes
    python airflow_bundle.py cleanup NAME          # Airflow's stale-version cleanup, as the scheduler runs it
"""

import json
import sys

MARK = "@bundle "  # starts each line this script writes; Airflow's own logs may share stdout


def version_of(bundle) -> dict:
    from airflow.dag_processing.bundles.base import unpack_bundle_version

    version, data = unpack_bundle_version(bundle.get_current_version(), bundle)
    return {"version": version, "data": data, "path": str(bundle.path), "versioned": bundle.supports_versioning}


def load(name: str, version: str | None) -> dict:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import BundleDagBag

    bundle = DagBundlesManager().get_bundle(name, version)
    bundle.initialize()
    bag = BundleDagBag(dag_folder=bundle.path, bundle_path=bundle.path, bundle_name=name, safe_mode=True)
    return version_of(bundle) | {
        "errors": {path: (text.strip().splitlines() or [""])[-1][:300] for path, text in bag.import_errors.items()},
        "dags": {dag_id: sorted(bag.dags[dag_id].tags) for dag_id in bag.dag_ids}}


def drive(name: str) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    bundle = DagBundlesManager().get_bundle(name)
    bundle.initialize()
    say(version_of(bundle))
    for _ in sys.stdin:
        try:
            bundle.refresh()
            say(version_of(bundle))
        except Exception as exc:  # what the DAG processor logs as "Error refreshing bundle", keeping its version
            say(version_of(bundle) | {"error": f"{type(exc).__name__}: {exc}"})


def cleanup(name: str) -> dict:
    from airflow.dag_processing.bundles.base import BundleUsageTrackingManager
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    BundleUsageTrackingManager().remove_stale_bundle_versions()
    versions = DagBundlesManager().get_bundle(name).versions_dir
    return {"versions": sorted(p.name for p in versions.iterdir())}


def say(doc: dict) -> None:
    sys.stdout.write(MARK + json.dumps(doc) + "\n")
    sys.stdout.flush()


def main() -> None:
    command, name = sys.argv[1], sys.argv[2]
    if command == "load":
        say(load(name, sys.argv[3] if len(sys.argv) > 3 else None))
    elif command == "cleanup":
        say(cleanup(name))
    else:
        drive(name)


if __name__ == "__main__":
    main()
