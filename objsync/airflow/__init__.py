"""objsync for Airflow 3: `ObjsyncDagBundle`, a versioned DAG bundle backed by the manifests of `objsync push`.

Configure it in `[dag_processor] dag_bundle_config_list` with the classpath
`objsync.airflow.ObjsyncDagBundle`. Airflow itself is not a dependency of objsync: this package
needs it installed, and says so when it is not.
"""

try:
    from airflow.dag_processing.bundles.base import BaseDagBundle  # noqa: F401 - checked here, used in bundle
except ImportError:  # pragma: no cover - depends on the environment
    # `from None`: one message, without the ModuleNotFoundError chained above it.
    raise ImportError(
        "objsync.airflow needs Apache Airflow 3 (airflow.dag_processing.bundles), which is not installed here: "
        "install objsync with its airflow extra ('objsync[airflow]') into Airflow's own environment, next to "
        "apache-airflow>=3.0; Airflow 2 users run `objsync pull` as a sidecar instead") from None

from objsync.airflow.bundle import ObjsyncDagBundle

__all__ = ["ObjsyncDagBundle"]
