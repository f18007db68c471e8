"""
### Siaga digest

Every morning at 07:00 WITA, queues the managers' summary of the last 24 hours (incidents
opened, resolved and called false alarms per hazard and kecamatan, messages that could not be
delivered) for the `#siaga-managers` channel. Updates `siaga://outbox`, so the deliver DAG sends
it at once; a re-run the same day queues nothing new.
"""
from datetime import timedelta

from airflow.sdk import Asset, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from siaga import pipeline
from siaga.pipeline import run_time
from siaga.vocabulary import DIGEST_TIME, LOCAL_TZ_NAME

OUTBOX = Asset(pipeline.OUTBOX_URI)


@dag(
    schedule=CronTriggerTimetable(f"{DIGEST_TIME.minute} {DIGEST_TIME.hour} * * *", timezone=LOCAL_TZ_NAME),
    catchup=False,
    max_active_runs=1,
    tags=["siaga"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def siaga_digest():
    @task(outlets=[OUTBOX])
    def digest() -> dict:
        return pipeline.digest(run_time(get_current_context()))

    digest()


siaga_digest()
