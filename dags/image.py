"""
### image: a CNN on images (Fashion-MNIST, scikit-learn digits, or your own), and the poly-vs-ReLU experiment

Manual (press *Trigger*). Trains and registers an image classifier (`image_classifier`, or
`NAME_image` for a dataset added with `dataset add NAME --kind images`), runs the
polynomial-activation experiment against ReLU, and clusters the images with a Gaussian mixture;
everything is logged to the MLflow experiment `deep`.

Tasks, Params, data sources and outputs: `docs/dags/deep.md` in the repository.
"""

from __future__ import annotations

from _params import dag_args
from airflow.sdk import dag, task


@dag(
    **dag_args("image", __doc__),
    schedule=None,
    max_active_runs=1,  # both tasks train on one thread each: one run fills the two cores
    tags=["deep-learning", "vision", "experiment", "mlflow"],
)
def image():
    @task
    def train_cnn(params=None, run_id=None, ds=None) -> dict:
        from _steps import call

        from pipelines.deep.steps import image

        return call(image, dict(params), run_id, logical_ds=ds)

    @task.short_circuit
    def experiment_wanted(params=None) -> bool:
        return bool(params["run_experiment"])

    @task
    def poly_experiment(params=None, run_id=None) -> dict:
        from _steps import call

        from pipelines.deep.steps import poly_experiment

        return call(poly_experiment, dict(params), run_id)

    @task
    def cluster(params=None, run_id=None, ds=None) -> dict:
        from _steps import call

        from pipelines.deep.steps import cluster

        return call(cluster, dict(params), run_id, logical_ds=ds)

    train_cnn()
    cluster()
    experiment_wanted() >> poly_experiment()


image()
