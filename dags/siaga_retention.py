"""
### Siaga retention

Every night, deletes raw posts older than `retention_days` (config/sources.yaml), except those
an alert cites as evidence, so incidents keep showing why they were raised.
"""
from datetime import timedelta

from airflow.sdk import dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from siaga import pipeline
from siaga.pipeline import run_time
from siaga.vocabulary import LOCAL_TZ_NAME


@dag(
    schedule=CronTriggerTimetable("30 2 * * *", timezone=LOCAL_TZ_NAME),
    catchup=False,
    max_active_runs=1,
    tags=["siaga"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=5)},
    doc_md=__doc__,
)
def siaga_retention():
    @task
    def purge() -> dict:
        return pipeline.purge(run_time(get_current_context()))

    purge()


siaga_retention()
