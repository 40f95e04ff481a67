"""
### image: a CNN on Fashion-MNIST (scikit-learn digits when it is not installed), and the poly-vs-ReLU experiment

Manual (press *Trigger*). The data is Fashion-MNIST's idx files under
`/usr/share/datasets/fashion-mnist` (Debian's `dataset-fashion-mnist`; `make datasets` installs it)
when present, else scikit-learn's 8x8 digits; the task log and the MLflow tag `image_dataset` say
which one was used.

1. **train_cnn**: two conv blocks with dropout, AdamW with a one-cycle learning rate (`deep.image_*`
   settings), early stopping on validation loss; test accuracy, the confusion matrix, a grid of
   test images with true/predicted labels and the loss curves on an MLflow run (experiment `deep`);
   registered as `image_classifier` (pyfunc: pixel columns `px_0..` scaled to [0, 1] in, `label`
   and `confidence` out), alias `champion` when it beats the champion's test accuracy.
2. **poly_experiment**: the same CNN with the activation f'(x) = -6x^2 - 12x + 18 (input clamped to
   [-3, 3]) and PolyAdam against ReLU and Adam, `seeds` seeds each, on at most
   `experiment_max_rows` training images: accuracy, loss curves and diverged runs per arm, and a
   plot of f and f'.
3. **cluster**: a Gaussian mixture on the images' first two principal components, the number of
   components chosen by BIC (`deep.gmm_*` settings): BIC per k, a log-density contour plot with
   the clusters and the rows flagged as anomalies (log-likelihood below the 1st percentile).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import Param, dag, task


def _step(name: str, *args, **kwargs):
    from _steps import step

    return step("pipelines.deep.steps", name, *args, **kwargs)


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
        "source": Param(
            "auto",
            type="string",
            enum=["auto", "fashion_mnist", "digits"],
            description="Image data: auto (Fashion-MNIST when its idx files are installed, else digits), or force one.",
        ),
        "epochs": Param(
            12,
            type="integer",
            minimum=1,
            maximum=200,
            description="Most epochs per CNN fit (the learning-rate schedule spans them; early stopping may end sooner).",
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
    def train_cnn(params=None, run_id=None) -> dict:
        return _step("image", dict(params), run_id)

    @task.short_circuit
    def experiment_wanted(params=None) -> bool:
        return bool(params["run_experiment"])

    @task
    def poly_experiment(params=None, run_id=None) -> dict:
        return _step("poly_experiment", dict(params), run_id)

    @task
    def cluster(params=None, run_id=None) -> dict:
        return _step("cluster", dict(params), run_id)

    train_cnn()
    cluster()
    experiment_wanted() >> poly_experiment()


image()
