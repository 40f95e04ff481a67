"""
### image: a CNN on images (Fashion-MNIST, scikit-learn digits, or your own), and the poly-vs-ReLU experiment

Manual (press *Trigger*). Trains and registers an image classifier (`image_classifier`, or
`NAME_image` for a dataset added with `dataset add NAME --kind images`), runs the
polynomial-activation experiment against ReLU, and clusters the images with a Gaussian mixture;
everything is logged to the MLflow experiment `deep`.

Tasks, Params, data sources and outputs: `docs/dags/deep.md` in the repository.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


@dag(
    dag_id="image",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,  # both tasks train on one thread each: one run fills the two cores
    tags=["deep-learning", "vision", "experiment", "mlflow"],
    doc_md=__doc__,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "dataset": Param(
            "",
            type="string",
            description="Empty: the reference data (`source`). Else a dataset added with `dataset add --kind images`.",
        ),
        "ds": Param("", type="string", description="Your dataset: its gold up to this date (empty: the logical date)."),
        "source": Param(
            "auto",
            type="string",
            enum=["auto", "fashion_mnist", "digits"],
            description="Image data: auto (Fashion-MNIST when its idx files are installed, else digits), or force one.",
        ),
        "epochs": Param(
            0,
            type="integer",
            minimum=0,
            maximum=200,
            description="Most epochs per CNN fit (0: deep.image_epochs, more on a small dataset so training runs "
            "1,000 steps; the learning-rate schedule spans them; early stopping may end sooner).",
        ),
        "patience": Param(4, type="integer", minimum=1, description="Epochs without validation gain before stopping."),
        "seeds": Param(
            5, type="integer", minimum=1, maximum=20, description="Seeds per arm of the poly-vs-ReLU experiment."
        ),
        "max_rows": Param(
            0, type="integer", minimum=0, description="Train on at most this many images (0: all). Smaller is faster."
        ),
        "experiment_max_rows": Param(
            6000,
            type="integer",
            minimum=0,
            description="The poly-vs-ReLU experiment trains each of its runs on at most this many images (0: all).",
        ),
        "run_experiment": Param(True, type="boolean", description="Also run the poly-vs-ReLU experiment."),
    },
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
