"""What the Siaga DAGs share: the assets that chain them and the time a run stands for."""
from datetime import datetime

from airflow.sdk import Asset

POSTS = Asset("siaga://posts")
OUTBOX = Asset("siaga://outbox")


def run_time(context) -> datetime:
    """The moment this run stands for: its interval end, else its logical date, else when it was
    triggered (runs triggered by an asset or by hand may have no logical date)."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if value is not None:
            return value
    return context["dag_run"].run_after
