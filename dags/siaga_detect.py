"""
### Siaga detect

Runs when ingest stored posts (the `siaga://posts` asset): tags new posts with places and
hazards, counts them per hazard and area, finds spikes against the baseline, opens, updates or
resolves incidents and writes their Slack messages to the outbox in the same transaction
(`siaga.detect.run`; settings in `config/detection.yaml`), then sends them at once from the same
task (`siaga.pipeline.detect_and_deliver`): a separate deliver run would add a scheduler hop and a
task start to every alert. What it cannot send within 30 s, or when Slack fails, the deliver DAG
sends on its schedule.

Also runs every five minutes: spike windows end on five-minute bucket boundaries
(`siaga.spikes.BUCKET`), so the window holding the last burst of posts is only evaluated by a run
after its boundary, and quiet incidents resolve with time, not with new posts. Triggered by new
posts alone, a burst that ends before a boundary would never alert.

One task, not a tagging task and a detect task: both stages need the gazetteer (tagging to place
posts, detection for the areas, the villages along roads and village borders), and a second task
would load it again in its own process on every run (about 4 s of CPU with the national
gazetteer) before any alert could be written.
"""
from datetime import timedelta

from airflow.sdk import Asset, dag, get_current_context, task
from airflow.timetables.assets import AssetOrTimeSchedule
from airflow.timetables.trigger import CronTriggerTimetable

from siaga import pipeline
from siaga.pipeline import run_time

POSTS = Asset(pipeline.POSTS_URI)


@dag(
    schedule=AssetOrTimeSchedule(timetable=CronTriggerTimetable("*/5 * * * *", timezone="UTC"), assets=[POSTS]),
    catchup=False,
    max_active_runs=1,
    tags=["siaga"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=20)},
    doc_md=__doc__,
)
def siaga_detect():
    @task
    def detect_incidents() -> dict:
        return pipeline.detect_and_deliver(run_time(get_current_context()))

    detect_incidents()


siaga_detect()
