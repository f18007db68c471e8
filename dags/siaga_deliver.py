"""
### Siaga deliver

Sends the outbox to Slack: when detect wrote messages (the `siaga://outbox` asset) and every two
minutes, so a delivery that failed is retried later. Each message is claimed by one worker and
marked sent only after Slack accepted it: re-runs and parallel runs never post twice.
"""
from datetime import timedelta

from airflow.sdk import Asset, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from siaga import pipeline
from siaga.pipeline import run_time

OUTBOX = Asset(pipeline.OUTBOX_URI)


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/2 * * * *", timezone="UTC"), assets=[OUTBOX]),
    catchup=False,
    tags=["siaga"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    doc_md=__doc__,
)
def siaga_deliver():
    @task
    def deliver() -> dict:
        return pipeline.deliver(run_time(get_current_context()))

    deliver()


siaga_deliver()
