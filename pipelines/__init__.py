"""ML platform logic: everything the DAGs run lives here and never imports airflow."""

__version__ = "0.1.0"
