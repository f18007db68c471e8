"""
### Siaga deliver

Sends what is left in the outbox to Slack: every two minutes, and when the digest wrote its
message (the `siaga://outbox` asset). Alerts are first sent by the detect task that wrote them
(`siaga.pipeline.detect_and_deliver`); this DAG retries what failed, what that task's time budget
left, and what quiet hours held back. Each message is claimed by one worker and
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
